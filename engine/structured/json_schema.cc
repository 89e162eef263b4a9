#include "engine/structured/json_schema.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>

#include "engine/structured/regex_pattern.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using Wide = unsigned __int128;

constexpr int kMaxDigits = 20;  // significant digits of a number (contracts.md §5)

const std::set<std::string>& Annotations() {
  static const std::set<std::string> words = {"title", "description", "default", "examples", "$schema", "$id",
                                              "$comment", "deprecated", "readOnly", "writeOnly", "$defs",
                                              "definitions"};
  return words;
}

const std::set<std::string>& Supported() {
  static const std::set<std::string> words = {
      "type", "properties", "required", "additionalProperties", "enum", "const", "items", "prefixItems",
      "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
      "exclusiveMaximum", "pattern", "format", "anyOf", "oneOf", "allOf", "$ref"};
  return words;
}

// Patterns of the formats the compiler checks: real calendar dates (leap
// years included), RFC 3339 times with an offset, dot-atom emails.
const std::map<std::string, std::string>& FormatPatterns() {
  const std::string day_month =
      "((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
  const std::string leap_year = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)";
  const std::string date = "([0-9]{4}-" + day_month + "|" + leap_year + "-02-29)";
  const std::string time = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
  const std::string atom = "[A-Za-z0-9_%+-]{1,32}";
  const std::string label = "[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?";
  const std::string octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
  static const std::map<std::string, std::string> patterns = {
      {"date", "^" + date + "$"},
      {"time", "^" + time + "$"},
      {"date-time", "^" + date + "T" + time + "$"},
      {"uuid", "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
      {"email", "^" + atom + "(\\." + atom + "){0,3}@" + label + "(\\." + label + "){0,3}\\.[A-Za-z]{2,24}$"},
      {"ipv4", "^(" + octet + "\\.){3}" + octet + "$"},
  };
  return patterns;
}

Expr Digits(int64_t min, int64_t max) { return Expr::Repeat(Expr::Symbols('0', '9'), min, max); }

std::string Decimal(Wide v) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v);
  return s;
}

Wide Pow10(int n) {
  Wide p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

// Digit strings of equal length from lo to hi (lo <= hi), digit by digit.
Expr SameLength(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return Expr::Empty();
  const size_t rest = lo.size() - 1;
  if (lo[0] == hi[0]) return Expr::Seq({Expr::Byte(lo[0]), SameLength(lo.substr(1), hi.substr(1))});
  const std::string zeros(rest, '0'), nines(rest, '9');
  if (lo.substr(1) == zeros && hi.substr(1) == nines) {
    return Expr::Seq({Expr::Symbols(lo[0], hi[0]), Digits(rest, rest)});
  }
  std::vector<Expr> options = {Expr::Seq({Expr::Byte(lo[0]), SameLength(lo.substr(1), nines)})};
  if (hi[0] - lo[0] > 1) options.push_back(Expr::Seq({Expr::Symbols(lo[0] + 1, hi[0] - 1), Digits(rest, rest)}));
  options.push_back(Expr::Seq({Expr::Byte(hi[0]), SameLength(zeros, hi.substr(1))}));
  return Expr::Alt(std::move(options));
}

// A fraction that keeps a whole part of `whole_digits` within kMaxDigits.
Expr OptionalFraction(int whole_digits, const Expr& digit) {
  if (whole_digits >= kMaxDigits) return Expr::Empty();
  return Expr::Optional(Expr::Seq({Expr::Byte('.'), Expr::Repeat(digit, 1, kMaxDigits - whole_digits)}));
}

// Whole numbers in [lo, hi] (hi unset: up to kMaxDigits digits) written
// without leading zeros; with `fraction`, each may have a fractional part,
// at most kMaxDigits digits in all.
Expr UnsignedRange(Wide lo, std::optional<Wide> hi, bool fraction = false) {
  const Wide top = hi ? *hi : Pow10(kMaxDigits) - 1;
  if (lo > top) return Expr::Never();
  std::vector<Expr> options;
  for (int length = 1; length <= kMaxDigits + 1; ++length) {
    const Wide first = length == 1 ? 0 : Pow10(length - 1), last = Pow10(length) - 1;
    const Wide a = std::max(lo, first), b = std::min(top, last);
    if (a <= b) {
      options.push_back(Expr::Seq({SameLength(Decimal(a), Decimal(b)),
                                   fraction ? OptionalFraction(length, Expr::Symbols('0', '9')) : Expr::Empty()}));
    }
    if (last >= top) break;
  }
  return Expr::Alt(std::move(options));
}

std::optional<Wide> Magnitude(std::optional<int64_t> v) {
  if (!v) return std::nullopt;
  return static_cast<Wide>(*v < 0 ? -static_cast<__int128>(*v) : static_cast<__int128>(*v));
}

}  // namespace

Expr OrderedMembers(const std::vector<Expr>& members, const std::vector<bool>& required, const Expr& separator) {
  // rest(i): members i.. after one already written; first(i): starting at
  // member i or a later one.
  const size_t n = members.size();
  std::vector<Expr> rest(n + 1, Expr::Empty());
  for (size_t i = n; i-- > 0;) {
    const Expr next = Expr::Seq({separator, members[i]});
    rest[i] = Expr::Seq({required[i] ? next : Expr::Optional(next), rest[i + 1]});
  }
  Expr first = Expr::Never();
  for (size_t i = n; i-- > 0;) {
    const Expr here = Expr::Seq({members[i], rest[i + 1]});
    first = required[i] ? here : Expr::Alt({here, first});
  }
  return first;
}

JsonSchemaCompiler::JsonSchemaCompiler(Grammar& grammar, const Json& root, std::string where)
    : grammar_(grammar), root_(root), where_(std::move(where)) {}

void JsonSchemaCompiler::Fail(const std::string& path, const std::string& what) const {
  throw Error(where_ + (path.empty() ? "" : path) + ": " + what);
}

Expr JsonSchemaCompiler::Whitespace() {
  const Expr spaces = Expr::Repeat(Expr::Byte(' '), 0, 16);
  return Expr::Seq({Expr::Optional(Expr::Byte('\n')), spaces});
}

Expr JsonSchemaCompiler::AnyValue() {
  if (any_value_ >= 0) return Expr::Rule(any_value_);
  any_value_ = grammar_.AddRule();
  any_object_ = grammar_.AddRule();
  const Expr ws = Whitespace(), value = Expr::Rule(any_value_);
  const Expr string = Expr::Seq({Expr::Byte('"'), Expr::StringBody(StringForm::kJson, 0, -1), Expr::Byte('"')});
  const Expr member = Expr::Seq({string, ws, Expr::Byte(':'), ws, value});
  const Expr more = [&](const Expr& item) {
    return Expr::Seq({item, Expr::Repeat(Expr::Seq({ws, Expr::Byte(','), ws, item}), 0, -1), ws});
  }(member);
  grammar_.Define(any_object_, Expr::Seq({Expr::Byte('{'), ws, Expr::Optional(more), Expr::Byte('}')}));
  const Expr items = Expr::Seq({value, Expr::Repeat(Expr::Seq({ws, Expr::Byte(','), ws, value}), 0, -1), ws});
  const Expr array = Expr::Seq({Expr::Byte('['), ws, Expr::Optional(items), Expr::Byte(']')});
  Json any = Json::object();
  grammar_.Define(any_value_, Expr::Alt({Expr::Rule(any_object_), array, string, Number(any, ""),
                                         Expr::Literal("true"), Expr::Literal("false"), Expr::Literal("null")}));
  return value;
}

Expr JsonSchemaCompiler::AnyObject() {
  AnyValue();
  return Expr::Rule(any_object_);
}

Expr JsonSchemaCompiler::Shared(const Json& schema, const std::string& path) {
  const int rule = grammar_.AddRule();
  grammar_.Define(rule, Value(schema, path));
  return Expr::Rule(rule);
}

Expr JsonSchemaCompiler::Ref(const std::string& ref, const std::string& path) {
  const auto known = refs_.find(ref);
  if (known != refs_.end()) return Expr::Rule(known->second);
  if (ref.empty() || ref[0] != '#') Fail(path + "/$ref", "only local references (\"#...\") are supported, not \"" + ref + "\"");
  const std::string pointer = ref.substr(1);
  const Json* target = nullptr;
  try {
    const Json::json_pointer p(pointer);
    if (root_.contains(p)) target = &root_.at(p);
  } catch (const std::exception&) {
  }
  if (!target) Fail(path + "/$ref", "\"" + ref + "\" does not resolve in the schema");
  const int rule = grammar_.AddRule();
  refs_[ref] = rule;
  grammar_.Define(rule, Value(*target, pointer));
  return Expr::Rule(rule);
}

Expr JsonSchemaCompiler::Value(const Json& schema, const std::string& path) {
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) Fail(path, "the schema false allows no value");
    return AnyValue();
  }
  const std::vector<std::string> constraints = Keywords(schema, path);
  const auto alone = [&](const std::string& key) {
    for (const std::string& other : constraints) {
      if (other != key) Fail(path + "/" + other, "keyword \"" + other + "\" beside \"" + key + "\" is not supported");
    }
  };
  if (schema.contains("$ref")) {
    alone("$ref");
    if (!schema["$ref"].is_string()) Fail(path + "/$ref", "must be a string");
    return Ref(schema["$ref"].get<std::string>(), path);
  }
  for (const char* key : {"anyOf", "oneOf", "allOf"}) {
    if (!schema.contains(key)) continue;
    alone(key);
    const Json& list = schema[key];
    if (!list.is_array() || list.empty()) Fail(path + "/" + key, "must be a non-empty array");
    if (std::string(key) == "allOf" && list.size() != 1) Fail(path + "/allOf", "allOf with more than one schema is not supported");
    std::vector<Expr> options;
    for (size_t i = 0; i < list.size(); ++i) options.push_back(Value(list[i], path + "/" + key + "/" + std::to_string(i)));
    return Expr::Alt(std::move(options));
  }
  if (schema.contains("const") || schema.contains("enum")) {
    std::vector<Json> values;
    if (schema.contains("const")) values.push_back(schema["const"]);
    if (schema.contains("enum")) {
      if (!schema["enum"].is_array() || schema["enum"].empty()) Fail(path + "/enum", "must be a non-empty array");
      for (const Json& v : schema["enum"]) values.push_back(v);
    }
    std::vector<Expr> options;
    for (const Json& v : values) {
      if (schema.contains("const") && v != schema["const"]) continue;  // enum and const: their intersection
      options.push_back(Expr::Literal(v.dump()));
    }
    if (options.empty()) Fail(path, "enum and const allow no common value");
    return Expr::Alt(std::move(options));
  }
  std::vector<std::string> types;
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    if (t.is_string()) {
      types.push_back(t.get<std::string>());
    } else if (t.is_array() && !t.empty()) {
      for (const Json& item : t) {
        if (!item.is_string()) Fail(path + "/type", "must hold type names");
        types.push_back(item.get<std::string>());
      }
    } else {
      Fail(path + "/type", "must be a type name or a non-empty array of them");
    }
  } else {
    // No type: the keywords say which types they constrain.
    const auto has = [&](std::initializer_list<const char*> keys) {
      return std::any_of(keys.begin(), keys.end(), [&](const char* k) { return schema.contains(k); });
    };
    if (has({"properties", "required", "additionalProperties"})) types.push_back("object");
    if (has({"items", "prefixItems", "minItems", "maxItems"})) types.push_back("array");
    if (has({"minLength", "maxLength", "pattern", "format"})) types.push_back("string");
    if (has({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})) types.push_back("number");
    if (types.empty()) return AnyValue();
  }
  std::vector<Expr> options;
  for (const std::string& type : types) options.push_back(Typed(schema, type, path));
  return Expr::Alt(std::move(options));
}

Expr JsonSchemaCompiler::Typed(const Json& schema, const std::string& type, const std::string& path) {
  if (type == "object") return Object(schema, path);
  if (type == "array") return Array(schema, path);
  if (type == "string") return Expr::Seq({Expr::Byte('"'), String(schema, path, StringForm::kJson), Expr::Byte('"')});
  if (type == "integer") return Integer(schema, path);
  if (type == "number") return Number(schema, path);
  if (type == "boolean") return Expr::Alt({Expr::Literal("true"), Expr::Literal("false")});
  if (type == "null") return Expr::Literal("null");
  Fail(path + "/type", "unknown type \"" + type + "\"");
}

Expr JsonSchemaCompiler::Object(const Json& schema, const std::string& path) {
  const Expr ws = Whitespace();
  const Expr comma = Expr::Seq({ws, Expr::Byte(','), ws});
  std::vector<std::string> names;
  std::vector<Expr> members;
  std::vector<bool> required;
  std::set<std::string> required_names;
  if (schema.contains("required")) {
    if (!schema["required"].is_array()) Fail(path + "/required", "must be an array of property names");
    for (const Json& name : schema["required"]) {
      if (!name.is_string()) Fail(path + "/required", "must be an array of property names");
      required_names.insert(name.get<std::string>());
    }
  }
  const Json* extra = schema.contains("additionalProperties") ? &schema["additionalProperties"] : nullptr;
  const auto member = [&](const std::string& name, const Expr& value) {
    return Expr::Seq({Expr::Literal(Json(name).dump()), ws, Expr::Byte(':'), ws, value});
  };
  if (schema.contains("properties")) {
    if (!schema["properties"].is_object()) Fail(path + "/properties", "must be an object");
    for (const auto& [name, sub] : schema["properties"].items()) {
      if (sub.is_boolean() && !sub.get<bool>()) {  // the property must not appear
        if (required_names.count(name)) Fail(path + "/properties/" + name, "is required but its schema is false");
        continue;
      }
      names.push_back(name);
      members.push_back(member(name, Shared(sub, path + "/properties/" + name)));
      required.push_back(required_names.count(name) > 0);
    }
  }
  for (const std::string& name : required_names) {
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    if (extra && extra->is_boolean() && !extra->get<bool>()) {
      Fail(path + "/required", "\"" + name + "\" is required but not among the properties");
    }
    names.push_back(name);
    members.push_back(member(name, extra && extra->is_object() ? Shared(*extra, path + "/additionalProperties") : AnyValue()));
    required.push_back(true);
  }
  if (extra && !extra->is_boolean() && members.empty()) {
    // A map: any keys, each value of the schema. (Beside listed properties,
    // extra ones are optional and none are written.)
    const Expr key = Expr::Seq({Expr::Byte('"'), Expr::StringBody(StringForm::kJson, 0, -1), Expr::Byte('"')});
    const Expr item = Expr::Seq({key, ws, Expr::Byte(':'), ws, Shared(*extra, path + "/additionalProperties")});
    const Expr items = Expr::Seq({item, Expr::Repeat(Expr::Seq({comma, item}), 0, -1), ws});
    return Expr::Seq({Expr::Byte('{'), ws, Expr::Optional(items), Expr::Byte('}')});
  }
  const Expr first = OrderedMembers(members, required, comma);
  const bool any_required = std::find(required.begin(), required.end(), true) != required.end();
  std::vector<Expr> options = {Expr::Seq({Expr::Byte('{'), ws, first, ws, Expr::Byte('}')})};
  if (!any_required) options.push_back(Expr::Seq({Expr::Byte('{'), ws, Expr::Byte('}')}));
  return Expr::Alt(std::move(options));
}

namespace {

int64_t Count(const Json& schema, const char* key, int64_t fallback, const std::function<void(const std::string&)>& fail) {
  if (!schema.contains(key)) return fallback;
  const Json& v = schema[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(key);
  return v.get<int64_t>();
}

}  // namespace

Expr JsonSchemaCompiler::Array(const Json& schema, const std::string& path) {
  const auto bad = [&](const std::string& key) { Fail(path + "/" + key, "must be a non-negative integer"); };
  const int64_t min = Count(schema, "minItems", 0, bad);
  int64_t max = Count(schema, "maxItems", -1, bad);
  if (max >= 0 && max < min) Fail(path + "/maxItems", "is below minItems");
  std::vector<Expr> prefix;
  if (schema.contains("prefixItems")) {
    if (!schema["prefixItems"].is_array()) Fail(path + "/prefixItems", "must be an array of schemas");
    for (size_t i = 0; i < schema["prefixItems"].size(); ++i) {
      prefix.push_back(Shared(schema["prefixItems"][i], path + "/prefixItems/" + std::to_string(i)));
    }
  }
  Expr item = Expr::Never();
  if (!schema.contains("items") || !schema["items"].is_boolean()) {
    item = schema.contains("items") ? Shared(schema["items"], path + "/items") : AnyValue();
  } else if (schema["items"].get<bool>()) {
    item = AnyValue();
  } else {
    const int64_t k = static_cast<int64_t>(prefix.size());
    max = max < 0 ? k : std::min(max, k);
    if (min > max) Fail(path + "/minItems", "needs more items than prefixItems allows");
  }
  const Expr ws = Whitespace();
  const Expr comma = Expr::Seq({ws, Expr::Byte(','), ws});
  // tail(i): the items from index i on, each after a comma.
  std::function<Expr(int64_t)> tail = [&](int64_t i) -> Expr {
    if (max >= 0 && i >= max) return Expr::Empty();
    const int64_t need = std::max<int64_t>(min - i, 0);
    if (i < static_cast<int64_t>(prefix.size())) {
      const Expr here = Expr::Seq({comma, prefix[i], tail(i + 1)});
      return need > 0 ? here : Expr::Optional(here);
    }
    return Expr::Repeat(Expr::Seq({comma, item}), need, max < 0 ? -1 : max - i);
  };
  const Expr first = prefix.empty() ? item : prefix[0];
  std::vector<Expr> options;
  if (max != 0) options.push_back(Expr::Seq({Expr::Byte('['), ws, first, tail(1), ws, Expr::Byte(']')}));
  if (min == 0) options.push_back(Expr::Seq({Expr::Byte('['), ws, Expr::Byte(']')}));
  if (options.empty() || (min > 0 && first.kind() == Expr::Kind::kNever)) Fail(path, "no array satisfies the schema");
  return Expr::Alt(std::move(options));
}

Expr JsonSchemaCompiler::String(const Json& schema, const std::string& path, StringForm form) {
  if (schema.contains("enum") || schema.contains("const")) {
    // Raw parameters: the strings themselves (a JSON string was handled as a literal by Value).
    std::vector<Expr> options;
    for (const Json& v : schema.contains("enum") ? schema["enum"] : Json::array({schema["const"]})) {
      if (v.is_string()) options.push_back(Expr::Literal(v.get<std::string>()));
    }
    if (options.empty()) Fail(path, "enum/const hold no string");
    return Expr::Alt(std::move(options));
  }
  const auto bad = [&](const std::string& key) { Fail(path + "/" + key, "must be a non-negative integer"); };
  const int64_t min = Count(schema, "minLength", 0, bad);
  const int64_t max = Count(schema, "maxLength", -1, bad);
  if (max >= 0 && max < min) Fail(path + "/maxLength", "is below minLength");
  std::optional<std::string> pattern;
  std::string pattern_path = path + "/pattern";
  if (schema.contains("pattern")) {
    if (!schema["pattern"].is_string()) Fail(pattern_path, "must be a string");
    pattern = schema["pattern"].get<std::string>();
  }
  if (schema.contains("format")) {
    const Json& f = schema["format"];
    const auto known = f.is_string() ? FormatPatterns().find(f.get<std::string>()) : FormatPatterns().end();
    if (known == FormatPatterns().end()) {
      Fail(path + "/format", "format " + f.dump() + " is not supported (supported: date, time, date-time, uuid, email, ipv4)");
    }
    if (pattern) Fail(path + "/format", "format beside pattern is not supported");
    pattern = known->second;
    pattern_path = path + "/format";
  }
  if (pattern) {
    if (schema.contains("minLength") || schema.contains("maxLength")) {
      Fail(pattern_path, "pattern or format beside minLength/maxLength is not supported (state the length in the pattern)");
    }
    try {
      return PatternExpr(*pattern, form);
    } catch (const Error& e) {
      Fail(pattern_path, e.what());
    }
  }
  return Expr::StringBody(form, min, max);
}

Expr JsonSchemaCompiler::RawString(const Json& schema, const std::string& path) {
  Keywords(schema, path);
  return String(schema, path, StringForm::kRaw);
}

std::vector<std::string> JsonSchemaCompiler::Keywords(const Json& schema, const std::string& path) const {
  if (!schema.is_object()) Fail(path, "a schema must be an object or a boolean");
  std::vector<std::string> constraints;
  for (const auto& [key, v] : schema.items()) {
    if (Annotations().count(key)) continue;
    if (!Supported().count(key)) Fail(path + "/" + key, "keyword \"" + key + "\" is not supported");
    constraints.push_back(key);
  }
  return constraints;
}

namespace {

// minimum/maximum (and the exclusive forms) as whole-number bounds.
struct Bounds {
  std::optional<int64_t> lo, hi;
};

Bounds IntegerBounds(const Json& schema, const std::function<void(const std::string&, const std::string&)>& fail) {
  Bounds b;
  const auto read = [&](const char* key) -> std::optional<double> {
    if (!schema.contains(key)) return std::nullopt;
    if (!schema[key].is_number()) fail(key, "must be a number");
    const double v = schema[key].get<double>();
    if (!std::isfinite(v) || std::fabs(v) > 9.0e18) fail(key, "is out of range");
    return v;
  };
  const auto tighten_lo = [&](std::optional<double> v, bool exclusive) {
    if (!v) return;
    const int64_t x = static_cast<int64_t>(exclusive ? std::floor(*v) + 1 : std::ceil(*v));
    b.lo = b.lo ? std::max(*b.lo, x) : x;
  };
  const auto tighten_hi = [&](std::optional<double> v, bool exclusive) {
    if (!v) return;
    const int64_t x = static_cast<int64_t>(exclusive ? std::ceil(*v) - 1 : std::floor(*v));
    b.hi = b.hi ? std::min(*b.hi, x) : x;
  };
  tighten_lo(read("minimum"), false);
  tighten_lo(read("exclusiveMinimum"), true);
  tighten_hi(read("maximum"), false);
  tighten_hi(read("exclusiveMaximum"), true);
  return b;
}

}  // namespace

Expr JsonSchemaCompiler::Integer(const Json& schema, const std::string& path) {
  const Bounds b = IntegerBounds(schema, [&](const std::string& key, const std::string& what) { Fail(path + "/" + key, what); });
  if (b.lo && b.hi && *b.lo > *b.hi) Fail(path + "/minimum", "no integer lies between minimum and maximum");
  std::vector<Expr> options;
  if (!b.hi || *b.hi >= 0) options.push_back(UnsignedRange(b.lo ? Wide(std::max<int64_t>(*b.lo, 0)) : 0, b.hi ? std::optional<Wide>(Wide(*b.hi)) : std::nullopt));
  if (!b.lo || *b.lo < 0) {
    // -m for m in [max(1, -hi), -lo]
    const Wide lo_m = b.hi && *b.hi < 0 ? *Magnitude(b.hi) : 1;
    options.push_back(Expr::Seq({Expr::Byte('-'), UnsignedRange(lo_m, Magnitude(b.lo))}));
  }
  return Expr::Alt(std::move(options));
}

Expr JsonSchemaCompiler::Number(const Json& schema, const std::string& path) {
  if (!schema.contains("minimum") && !schema.contains("maximum") && !schema.contains("exclusiveMinimum") &&
      !schema.contains("exclusiveMaximum")) {
    const Expr exponent = Expr::Seq({Expr::Alt({Expr::Byte('e'), Expr::Byte('E')}),
                                     Expr::Optional(Expr::Alt({Expr::Byte('+'), Expr::Byte('-')})), Digits(1, 2)});
    return Expr::Seq({Expr::Optional(Expr::Byte('-')), UnsignedRange(0, std::nullopt, true), Expr::Optional(exponent)});
  }
  // Bounds on a number: whole-number bounds, inclusive; no exponent.
  for (const char* key : {"exclusiveMinimum", "exclusiveMaximum"}) {
    if (schema.contains(key)) Fail(path + "/" + key, key + std::string(" on type number is not supported (use minimum/maximum, or type integer)"));
  }
  for (const char* key : {"minimum", "maximum"}) {
    if (schema.contains(key) && (!schema[key].is_number() || std::floor(schema[key].get<double>()) != schema[key].get<double>())) {
      Fail(path + "/" + key, "a bound on type number must be a whole number");
    }
  }
  const Bounds b = IntegerBounds(schema, [&](const std::string& key, const std::string& what) { Fail(path + "/" + key, what); });
  if (b.lo && b.hi && *b.lo > *b.hi) Fail(path + "/minimum", "is above maximum");
  // Magnitudes in [a, b]: a whole part in [a, b-1] with any fraction, or b with a zero one.
  const auto magnitudes = [&](Wide a, std::optional<Wide> top) {
    if (!top) return UnsignedRange(a, std::nullopt, true);
    const std::string last = Decimal(*top);
    std::vector<Expr> options = {
        Expr::Seq({Expr::Literal(last), OptionalFraction(static_cast<int>(last.size()), Expr::Byte('0'))})};
    if (*top > a) options.push_back(UnsignedRange(a, *top - 1, true));
    return Expr::Alt(std::move(options));
  };
  std::vector<Expr> options;
  if (!b.hi || *b.hi >= 0) options.push_back(magnitudes(b.lo ? Wide(std::max<int64_t>(*b.lo, 0)) : 0, b.hi ? std::optional<Wide>(Wide(*b.hi)) : std::nullopt));
  if (!b.lo || *b.lo < 0) {
    const Wide a = b.hi && *b.hi < 0 ? *Magnitude(b.hi) : 0;
    options.push_back(Expr::Seq({Expr::Byte('-'), magnitudes(a, Magnitude(b.lo))}));
  }
  return Expr::Alt(std::move(options));
}

}  // namespace dsv4
