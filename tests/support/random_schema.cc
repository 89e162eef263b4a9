#include "tests/support/random_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace dsv4::testing {
namespace {

using Json = nlohmann::json;

// A schema and one instance that conforms to it.
struct Draw {
  Json schema;
  Json instance;
};

// Property names, several needing JSON escapes (quote, backslash, tab),
// JSON-pointer escapes (/ and ~), multi-byte UTF-8, or being empty.
const std::vector<std::string> kNames = {
    "id",          "name", "value", "count",      "tags",      "enabled",    "score",     "kind",
    "data",        "x",    "y",     "first name", "last-name", "snake_case", "camelCase", "with \"quote\"",
    "back\\slash", "café", "naïve", "日本",       "a/b",       "tilde~",     "",          "tab\there"};

// Values for enum and const. No two are equal as JSON, so an enum drawn from
// them never repeats a value.
const std::vector<Json> kStrings = {"red",     "green", "blue",       "a \"quoted\" word", "back\\slash",
                                    "ünïcödé", "",      "with space", "line\nbreak",       "🙂"};
const std::vector<Json> kNumbers = {0, -1, 42, 3.5, -0.25, 1000000, 7};
const std::vector<Json> kLiterals = {nullptr, true, false};
// 3.0 is there for numeric equality: an output of 3 matches it too.
const std::vector<Json> kComposites = {Json::parse(R"({"a": 1, "b": [true, null]})"), Json::parse(R"([1, "two", 3.0])"),
                                       Json::parse(R"({"nested": {"k": "v"}})"), Json::array(), Json::object()};

// Patterns the grammar's ECMAScript subset covers, each with strings it
// matches. Bounded ones are anchored with bounded repeats.
struct Pattern {
  const char* pattern;
  std::vector<const char*> examples;
  bool bounded;
};
const std::vector<Pattern> kPatterns = {
    {"^[a-z]{1,8}$", {"a", "abc", "abcdefgh"}, true},
    {"^[A-Z][a-z]{0,6}$", {"X", "Hello"}, true},
    {"^\\d{3}-\\d{4}$", {"555-1234"}, true},
    {"^(red|green|blue)$", {"red", "blue"}, true},
    {"^[0-9a-f]{4,8}$", {"beef", "00ff00aa"}, true},
    {"^-?[0-9]{1,4}(\\.[0-9]{1,2})?$", {"7", "-12.5", "1234.05"}, true},
    {"^[A-Z]{2}_[0-9]{2}$", {"AB_12"}, true},
    {"^[a-z]+$", {"hello"}, false},
    {"[0-9]", {"abc1", "9"}, false},
    {"^a.*z$", {"az", "a to z"}, false},
};

const std::string kAsciiChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,";
// One code point each: characters JSON escapes, and 2-, 3- and 4-byte UTF-8.
const std::vector<std::string> kSpecialChars = {"\"", "\\", "/", "\n", "\t", "\x01", "é", "ß", "中", "😀"};

const std::vector<std::string> kDefNames = {"Item", "Address", "point", "tag_list", "Status-Code"};

class Generator {
 public:
  Generator(std::mt19937_64& rng, const RandomSchemaOptions& options)
      : rng_(rng), options_(options), defs_key_(Chance(0.25) ? "definitions" : "$defs") {}

  SchemaWithInstance Root() {
    Draw root = Nests(0) && Chance(0.75) ? Object(0) : Any(0);
    if (!defs_.empty()) root.schema[defs_key_] = defs_;
    if (Chance(0.2)) root.schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
    return {std::move(root.schema), std::move(root.instance)};
  }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T& Pick(const std::vector<T>& from) {
    return from[Uniform(0, static_cast<int64_t>(from.size()) - 1)];
  }
  bool Nests(int depth) const { return depth < options_.max_depth; }

  // `depth`: this schema's level, the root's being 0. Objects, arrays and
  // anyOf/oneOf occur only above options.max_depth.
  Draw Any(int depth) {
    const bool nests = Nests(depth);
    const bool recursion = nests && options_.allow_refs && !options_.bounded;
    // Relative frequencies of each kind of schema.
    const std::pair<double, std::function<Draw()>> kinds[] = {
        {nests ? 3.0 : 0.0, [&] { return Object(depth); }},
        {nests ? 2.0 : 0.0, [&] { return Array(depth); }},
        {3.0, [&] { return String(); }},
        {2.0, [&] { return Integer(); }},
        {1.0, [&] { return Number(); }},
        {1.0, [&] { return Typed("boolean", depth); }},
        {0.5, [&] { return Typed("null", depth); }},
        {2.0, [&] { return Enum(); }},
        {1.0, [&] { return Const(depth); }},
        {1.0, [&] { return TypeList(depth); }},
        {nests && options_.allow_any_of ? 1.0 : 0.0, [&] { return Alternatives(depth); }},
        {options_.allow_refs ? 0.7 : 0.0, [&] { return Ref(depth); }},
        {recursion ? 0.5 : 0.0, [&] { return LinkedList(); }},
    };
    std::vector<double> weights;
    for (const auto& kind : kinds) weights.push_back(kind.first);
    Draw draw = kinds[std::discrete_distribution<size_t>(weights.begin(), weights.end())(rng_)].second();
    if (Chance(0.08)) draw.schema[Chance(0.5) ? "title" : "description"] = "A generated \"schema\"";
    return draw;
  }

  Draw Typed(const std::string& type, int depth) {
    if (type == "object") return Object(depth);
    if (type == "array") return Array(depth);
    if (type == "string") return String();
    if (type == "integer") return Integer();
    if (type == "number") return Number();
    if (type == "boolean") return {Json{{"type", "boolean"}}, Chance(0.5)};
    return {Json{{"type", "null"}}, nullptr};
  }

  Draw Object(int depth) {
    // Fewer properties deeper down keeps the outputs short.
    std::vector<std::string> names = kNames;
    std::shuffle(names.begin(), names.end(), rng_);
    const int64_t most = std::max(1, options_.max_properties / (depth + 1));
    names.resize(Uniform(0, std::min<int64_t>(most, names.size())));
    Draw draw{Json{{"type", "object"}}, Json::object()};
    Json properties = Json::object(), required = Json::array();
    for (const std::string& name : names) {
      if (Chance(0.05)) {  // optional, and never present: false allows no value
        properties[name] = false;
        continue;
      }
      Draw property = Any(depth + 1);
      const bool is_required = Chance(0.6);
      if (is_required) required.push_back(name);
      if (is_required || Chance(0.5)) draw.instance[name] = std::move(property.instance);
      properties[name] = std::move(property.schema);
    }
    if (!properties.empty() || Chance(0.5)) draw.schema["properties"] = std::move(properties);
    if (!required.empty()) draw.schema["required"] = std::move(required);
    if (options_.bounded || Chance(0.4)) {
      draw.schema["additionalProperties"] = false;
    } else if (Chance(0.5)) {
      draw.schema["additionalProperties"] = Json{{"type", "integer"}};
      draw.instance["extra"] = Uniform(-5, 5);
    } else {
      draw.instance["extra"] = "anything";  // no additionalProperties: anything goes
    }
    return draw;
  }

  Draw Array(int depth) {
    Draw draw{Json{{"type", "array"}}, Json::array()};
    std::vector<Json> element_instances;  // element i repeats the last one past the end
    int64_t min = 0, max = 0;
    if (Chance(0.25)) {  // a tuple, then either nothing or more items of one schema
      const int64_t size = Uniform(1, 3);
      for (int64_t i = 0; i < size; ++i) {
        Draw element = Any(depth + 1);
        draw.schema["prefixItems"].push_back(std::move(element.schema));
        element_instances.push_back(std::move(element.instance));
      }
      min = Uniform(0, size);
      if (Chance(0.5)) {
        draw.schema["items"] = false;
        max = size;
      } else {
        Draw rest = Any(depth + 1);
        draw.schema["items"] = std::move(rest.schema);
        element_instances.push_back(std::move(rest.instance));
        max = Uniform(std::max<int64_t>(min, 1), 4);
      }
    } else {
      Draw item = Any(depth + 1);
      draw.schema["items"] = std::move(item.schema);
      element_instances.push_back(std::move(item.instance));
      min = Chance(0.5) ? 0 : Uniform(0, 2);
      max = Uniform(std::max<int64_t>(min, 1), 4);
    }
    if (min > 0 || Chance(0.3)) draw.schema["minItems"] = min;
    if (options_.bounded || Chance(0.5)) {
      draw.schema["maxItems"] = max;
    } else if (draw.schema["items"] != false) {
      max = min + 3;
    }
    const int64_t length = Uniform(min, max);
    for (int64_t i = 0; i < length; ++i) {
      draw.instance.push_back(element_instances[std::min<size_t>(i, element_instances.size() - 1)]);
    }
    return draw;
  }

  Draw String() {
    Draw draw{Json{{"type", "string"}}, ""};
    const double choice = std::uniform_real_distribution<double>(0, 1)(rng_);
    if (options_.allow_patterns && choice < 0.2) {
      std::vector<Pattern> patterns;
      std::copy_if(kPatterns.begin(), kPatterns.end(), std::back_inserter(patterns),
                   [&](const Pattern& p) { return p.bounded || !options_.bounded; });
      const Pattern& pattern = Pick(patterns);
      draw.schema["pattern"] = pattern.pattern;
      draw.instance = Pick(pattern.examples);
    } else if (choice < 0.35) {
      // time, date-time (any fraction digits) and email are unbounded.
      const std::string format = options_.bounded
                                     ? Pick<std::string>({"date", "uuid"})
                                     : Pick<std::string>({"date", "uuid", "time", "date-time", "email", "ipv4"});
      draw.schema["format"] = format;
      draw.instance = FormatExample(format);
    } else {
      const int64_t min = Chance(0.4) ? Uniform(1, 4) : 0;
      int64_t max = Uniform(min, 24);
      if (min > 0) draw.schema["minLength"] = min;
      if (options_.bounded || Chance(0.5)) {
        draw.schema["maxLength"] = max;
      } else {
        max = min + 30;
      }
      draw.instance = Text(Uniform(min, max));
    }
    return draw;
  }

  std::string Text(int64_t code_points) {
    std::string text;
    for (int64_t i = 0; i < code_points; ++i) {
      text += Chance(0.85) ? std::string(1, kAsciiChars[Uniform(0, kAsciiChars.size() - 1)]) : Pick(kSpecialChars);
    }
    return text;
  }

  std::string FormatExample(const std::string& format) {
    char text[64];
    const auto date = [&] {
      std::snprintf(text, sizeof text, "%04d-%02d-%02d", int(Uniform(1900, 2099)), int(Uniform(1, 12)),
                    int(Uniform(1, 28)));
      return std::string(text);
    };
    const auto time = [&] {
      std::snprintf(text, sizeof text, "%02d:%02d:%02d%s", int(Uniform(0, 23)), int(Uniform(0, 59)),
                    int(Uniform(0, 59)), Pick<std::string>({"Z", ".5Z", "+05:30", "-08:00"}).c_str());
      return std::string(text);
    };
    if (format == "date") return date();
    if (format == "time") return time();
    if (format == "date-time") return date() + "T" + time();
    if (format == "email") return Pick<std::string>({"a@example.com", "first.last@mail.example.org", "x+tag@b.io"});
    if (format == "ipv4") {
      std::snprintf(text, sizeof text, "%d.%d.%d.%d", int(Uniform(0, 255)), int(Uniform(0, 255)), int(Uniform(0, 255)),
                    int(Uniform(0, 255)));
      return text;
    }
    std::string uuid;  // the only format left
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) uuid += '-';
      uuid += "0123456789abcdef"[Uniform(0, 15)];
    }
    return uuid;
  }

  Draw Integer() {
    Draw draw{Json{{"type", "integer"}}, 0};
    int64_t lo = Uniform(-1000, 100), hi = lo + Uniform(0, 200);  // lo == hi: a single value
    const int64_t bounds = Uniform(0, 4);  // none, both, minimum only, maximum only, both exclusive
    if (bounds == 1 || bounds == 2) draw.schema["minimum"] = lo;
    if (bounds == 1 || bounds == 3) draw.schema["maximum"] = hi;
    if (bounds == 4) draw.schema["exclusiveMinimum"] = lo - 1;
    if (bounds == 4) draw.schema["exclusiveMaximum"] = hi + 1;
    if (bounds == 2) hi = lo + 1000;  // the instance may lie far past a lone bound
    if (bounds == 3) lo = hi - 1000;
    draw.instance = Uniform(lo, hi);
    return draw;
  }

  Draw Number() {
    // An integer instance is a number too.
    const Json value = Chance(0.25) ? Json(Uniform(-100, 100)) : Json(Uniform(-100000, 100000) / 100.0);
    return {Json{{"type", "number"}}, value};
  }

  Draw Enum() {
    std::vector<Json> values;
    const int64_t kind = Uniform(0, 2);  // strings, numbers, mixed
    if (kind != 1) values.insert(values.end(), kStrings.begin(), kStrings.end());
    if (kind != 0) values.insert(values.end(), kNumbers.begin(), kNumbers.end());
    if (kind == 2) values.insert(values.end(), kLiterals.begin(), kLiterals.end());
    std::shuffle(values.begin(), values.end(), rng_);
    values.resize(Uniform(1, 5));
    Draw draw{Json::object(), Pick(values)};
    draw.schema["enum"] = values;
    if (kind != 2 && Chance(0.4)) draw.schema["type"] = kind == 0 ? "string" : "number";
    return draw;
  }

  Draw Const(int depth) {
    std::vector<Json> values = kStrings;
    values.insert(values.end(), kNumbers.begin(), kNumbers.end());
    values.insert(values.end(), kLiterals.begin(), kLiterals.end());
    if (Nests(depth)) values.insert(values.end(), kComposites.begin(), kComposites.end());
    Draw draw{Json::object(), Pick(values)};
    draw.schema["const"] = draw.instance;
    return draw;
  }

  // Two types whose keywords cannot clash: each keyword applies to one type,
  // and integer with number is left out (minimum would bound both).
  Draw TypeList(int depth) {
    std::vector<std::string> types = {"string", "integer", "number", "boolean", "null"};
    if (Nests(depth)) types.insert(types.end(), {"object", "array"});
    const std::string first = Pick(types);
    std::string second = first != "null" && Chance(0.5) ? "null" : Pick(types);
    while (second == first || (first == "integer" && second == "number") ||
           (first == "number" && second == "integer")) {
      second = Pick(types);
    }
    Draw a = Typed(first, depth), b = Typed(second, depth);
    for (const auto& [key, value] : b.schema.items()) a.schema[key] = value;
    a.schema["type"] = Json::array({first, second});
    return {std::move(a.schema), Chance(0.5) ? std::move(a.instance) : std::move(b.instance)};
  }

  // Alternatives of distinct types (never integer with number), so at most
  // one matches any value and oneOf holds whichever keyword is drawn.
  Draw Alternatives(int depth) {
    std::vector<std::string> types = {"string", "integer", "number", "boolean", "null", "object", "array"};
    std::shuffle(types.begin(), types.end(), rng_);
    types.erase(
        std::max(std::find(types.begin(), types.end(), "integer"), std::find(types.begin(), types.end(), "number")));
    types.resize(Uniform(2, 3));
    Json branches = Json::array();
    std::vector<Json> instances;
    for (const std::string& type : types) {
      Draw branch = Typed(type, depth + 1);
      branches.push_back(std::move(branch.schema));
      instances.push_back(std::move(branch.instance));
    }
    Draw draw{Json::object(), Pick(instances)};
    draw.schema[Chance(0.5) ? "anyOf" : "oneOf"] = std::move(branches);
    return draw;
  }

  std::string NewDefName() {
    const size_t index = def_count_++;
    return kDefNames[index % kDefNames.size()] + (index < kDefNames.size() ? "" : std::to_string(index));
  }

  Json RefTo(const std::string& name) const { return Json{{"$ref", "#/" + defs_key_ + "/" + name}}; }

  // A $ref to a new definition, or to an earlier one whose nesting fits here.
  // Definitions only refer to earlier ones, so refs never recurse.
  Draw Ref(int depth) {
    std::vector<const Definition*> fitting;
    for (const Definition& d : definitions_) {
      if (d.depth >= depth) fitting.push_back(&d);
    }
    if (!fitting.empty() && Chance(0.5)) {
      const Definition& d = *Pick(fitting);
      return {RefTo(d.name), d.instance};
    }
    const std::string name = NewDefName();
    Draw body = Any(depth);
    defs_[name] = std::move(body.schema);
    definitions_.push_back({name, body.instance, depth});
    return {RefTo(name), std::move(body.instance)};
  }

  // A recursive definition (unbounded only): {"value": ..., "next": <itself>}
  // with "next" optional, so the recursion ends.
  Draw LinkedList() {
    const std::string name = NewDefName();
    Draw value = Any(options_.max_depth);
    Json node = {{"type", "object"}, {"required", {"value"}}, {"additionalProperties", false}};
    node["properties"]["value"] = std::move(value.schema);
    node["properties"]["next"] = RefTo(name);
    defs_[name] = std::move(node);
    Json instance = {{"value", value.instance}};
    for (int64_t links = Uniform(0, 3); links > 0; --links) instance = {{"value", value.instance}, {"next", instance}};
    return {RefTo(name), std::move(instance)};
  }

  struct Definition {
    std::string name;
    Json instance;
    int depth;  // the level its body was drawn for: it fits wherever depth <= this
  };

  std::mt19937_64& rng_;
  const RandomSchemaOptions options_;
  const std::string defs_key_;
  Json defs_ = Json::object();
  size_t def_count_ = 0;  // names taken; a definition takes its name before its body is drawn
  std::vector<Definition> definitions_;
};

}  // namespace

SchemaWithInstance RandomSchemaWithInstance(std::mt19937_64& rng, const RandomSchemaOptions& options) {
  return Generator(rng, options).Root();
}

nlohmann::json RandomSchema(std::mt19937_64& rng, const RandomSchemaOptions& options) {
  return RandomSchemaWithInstance(rng, options).schema;
}

}  // namespace dsv4::testing
