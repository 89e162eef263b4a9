#include "tests/support/json_schema_validator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string_view>
#include <vector>

namespace dsv4::testing {
namespace {

using Json = nlohmann::json;

// A $ref chain this long without descending into the instance can only be a
// loop such as {"$ref": "#"}; real schemas chain a handful.
constexpr int kMaxRefChain = 64;

const std::set<std::string> kAnnotations = {"title",   "description", "default", "examples",
                                            "$schema", "$id",         "$comment"};
const std::set<std::string> kTypes = {"null", "boolean", "object", "array", "number", "integer", "string"};
const std::set<std::string> kFormats = {"date", "time", "date-time", "uuid", "email", "ipv4"};

std::string PointerToken(std::string_view key) {
  std::string token;
  for (char c : key) {
    if (c == '~') token += "~0";
    else if (c == '/') token += "~1";
    else token += c;
  }
  return token;
}

std::string Describe(const Json& value) {
  std::string text = value.dump();
  return text.size() <= 60 ? text : text.substr(0, 57) + "...";
}

[[noreturn]] void BadSchema(const std::string& where, const std::string& what) {
  throw std::invalid_argument("JSON schema at \"#" + where + "\": " + what);
}

std::optional<std::string> Fail(const std::string& pointer, const std::string& what) {
  return "at \"" + pointer + "\": " + what;
}

// Integers compare exactly (int64 against uint64 by sign first); a float on
// either side compares as double.
int CompareNumbers(const Json& a, const Json& b) {
  const auto compare = [](auto x, auto y) { return (x > y) - (x < y); };
  if (a.is_number_float() || b.is_number_float()) return compare(a.get<double>(), b.get<double>());
  const auto negative = [](const Json& v) { return !v.is_number_unsigned() && v.get<int64_t>() < 0; };
  if (negative(a) != negative(b)) return negative(a) ? -1 : 1;
  return negative(a) ? compare(a.get<int64_t>(), b.get<int64_t>()) : compare(a.get<uint64_t>(), b.get<uint64_t>());
}

bool JsonEqual(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b) == 0;
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!JsonEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [key, value] : a.items()) {
      const auto other = b.find(key);
      if (other == b.end() || !JsonEqual(value, *other)) return false;
    }
    return true;
  }
  return a == b;
}

bool IsInteger(const Json& v) {
  if (v.is_number_integer()) return true;  // signed or unsigned
  if (!v.is_number_float()) return false;
  const double x = v.get<double>();
  return std::isfinite(x) && std::floor(x) == x;
}

bool MatchesType(const std::string& type, const Json& v) {
  if (type == "integer") return IsInteger(v);
  if (type == "number") return v.is_number();
  return v.type_name() == type;  // null, boolean, object, array, string
}

size_t CodePoints(std::string_view utf8) {
  size_t count = 0;
  for (unsigned char c : utf8) count += (c & 0xC0) != 0x80;  // continuation bytes don't start a code point
  return count;
}

// RFC 3339 full-date, with the days of the month checked (leap years too).
bool IsDate(const std::string& s) {
  static const std::regex kDate(R"(^(\d{4})-(\d{2})-(\d{2})$)");
  std::smatch m;
  if (!std::regex_match(s, m, kDate)) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const int year = std::stoi(m[1]), month = std::stoi(m[2]), day = std::stoi(m[3]);
  if (month < 1 || month > 12 || day < 1) return false;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap);
}

// RFC 3339 full-time: HH:MM:SS[.fraction] then Z or +-HH:MM (required). Leap
// seconds (:60) are rejected: telling them apart needs the UTC conversion.
bool IsTime(const std::string& s) {
  static const std::regex kTime(R"(^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$)");
  return std::regex_match(s, kTime);
}

bool IsDateTime(const std::string& s) {
  return s.size() > 11 && IsDate(s.substr(0, 10)) && (s[10] == 'T' || s[10] == 't') && IsTime(s.substr(11));
}

bool MatchesFormat(const std::string& format, const std::string& s) {
  // ipv4: four decimal octets 0-255 without leading zeros (which some parsers read as octal).
  // email: LOCAL@DOMAIN, LOCAL an RFC 5322 dot-atom, DOMAIN two or more hostname labels; no quoted
  // local parts, IP literals or comments.
  static const std::regex kUuid("^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$");
  static const std::regex kIpv4(R"(^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$)");
  static const std::regex kEmail(
      "^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
      "@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$");
  if (format == "date") return IsDate(s);
  if (format == "time") return IsTime(s);
  if (format == "date-time") return IsDateTime(s);
  if (format == "uuid") return std::regex_match(s, kUuid);
  if (format == "email") return std::regex_match(s, kEmail);
  return std::regex_match(s, kIpv4);  // the only format left in kFormats
}

class Validator {
 public:
  explicit Validator(const Json& root) : root_(root) { CheckSchema(root, ""); }

  // `refs`: how many $refs were followed since the last step into the instance.
  std::optional<std::string> Validate(const Json& schema, const Json& v, const std::string& pointer, int refs) {
    if (schema.is_boolean()) {
      return schema.get<bool>() ? std::nullopt : Fail(pointer, "the schema false allows nothing");
    }
    if (const auto type = schema.find("type"); type != schema.end()) {
      bool matched = false;
      for (const Json& name : type->is_array() ? *type : Json::array({*type})) {
        matched |= MatchesType(name.get_ref<const std::string&>(), v);
      }
      if (!matched) return Fail(pointer, "expected type " + type->dump() + ", got " + v.type_name());
    }
    if (const auto values = schema.find("enum"); values != schema.end()) {
      bool found = false;
      for (const Json& value : *values) found |= JsonEqual(value, v);
      if (!found) return Fail(pointer, Describe(v) + " is not in enum " + Describe(*values));
    }
    if (const auto value = schema.find("const"); value != schema.end() && !JsonEqual(*value, v)) {
      return Fail(pointer, Describe(v) + " is not const " + Describe(*value));
    }
    if (v.is_number()) {
      if (auto error = CheckNumber(schema, v, pointer)) return error;
    } else if (v.is_string()) {
      if (auto error = CheckString(schema, v.get_ref<const std::string&>(), pointer)) return error;
    } else if (v.is_array()) {
      if (auto error = CheckArray(schema, v, pointer)) return error;
    } else if (v.is_object()) {
      if (auto error = CheckObject(schema, v, pointer)) return error;
    }
    if (auto error = CheckCombinators(schema, v, pointer, refs)) return error;
    if (const auto ref = schema.find("$ref"); ref != schema.end()) {
      const std::string& target = ref->get_ref<const std::string&>();
      if (refs >= kMaxRefChain) BadSchema("", "$ref " + target + " loops without descending into the instance");
      return Validate(Resolve(target, ""), v, pointer, refs + 1);
    }
    return std::nullopt;
  }

 private:
  void CheckSchemaArray(const Json& value, const std::string& where) {
    if (!value.is_array() || value.empty()) BadSchema(where, "expected a non-empty array of schemas");
    for (size_t i = 0; i < value.size(); ++i) CheckSchema(value[i], where + "/" + std::to_string(i));
  }

  void CheckSchemaMap(const Json& value, const std::string& where) {
    if (!value.is_object()) BadSchema(where, "expected an object of schemas");
    for (const auto& [key, schema] : value.items()) CheckSchema(schema, where + "/" + PointerToken(key));
  }

  // Every keyword of the subset, with a value of the right shape, anywhere
  // in the schema: an error in a branch the instance never takes still throws.
  void CheckSchema(const Json& schema, const std::string& where) {
    if (schema.is_boolean()) return;
    if (!schema.is_object()) BadSchema(where, "a schema must be an object or a boolean");
    for (const auto& [key, value] : schema.items()) {
      const std::string here = where + "/" + PointerToken(key);
      if (kAnnotations.contains(key) || key == "const") continue;
      if (key == "type") {
        const Json names = value.is_array() ? value : Json::array({value});
        if (names.empty()) BadSchema(here, "an empty type list allows nothing");
        for (const Json& name : names) {
          if (!name.is_string() || !kTypes.contains(name.get_ref<const std::string&>())) {
            BadSchema(here, "unknown type " + name.dump());
          }
        }
      } else if (key == "properties" || key == "$defs" || key == "definitions") {
        CheckSchemaMap(value, here);
      } else if (key == "items" && value.is_array()) {
        BadSchema(here, "\"items\" as an array is draft 2019 and earlier; use \"prefixItems\"");
      } else if (key == "additionalProperties" || key == "items") {
        CheckSchema(value, here);
      } else if (key == "prefixItems" || key == "anyOf" || key == "oneOf" || key == "allOf") {
        CheckSchemaArray(value, here);
      } else if (key == "required") {
        const bool strings = value.is_array() &&
                             std::all_of(value.begin(), value.end(), [](const Json& name) { return name.is_string(); });
        if (!strings) BadSchema(here, "\"required\" must be an array of strings");
      } else if (key == "enum") {
        if (!value.is_array()) BadSchema(here, "\"enum\" must be an array");
      } else if (key == "minItems" || key == "maxItems" || key == "minLength" || key == "maxLength") {
        if (!IsInteger(value) || value.get<double>() < 0) BadSchema(here, "expected a non-negative integer");
      } else if (key == "minimum" || key == "maximum" || key == "exclusiveMinimum" || key == "exclusiveMaximum") {
        if (!value.is_number()) BadSchema(here, "expected a number");
      } else if (key == "pattern") {
        if (!value.is_string()) BadSchema(here, "\"pattern\" must be a string");
        Regex(value.get_ref<const std::string&>(), here);
      } else if (key == "format") {
        if (!value.is_string() || !kFormats.contains(value.get_ref<const std::string&>())) {
          BadSchema(here, "unsupported format " + value.dump());
        }
      } else if (key == "$ref") {
        if (!value.is_string()) BadSchema(here, "\"$ref\" must be a string");
        Resolve(value.get_ref<const std::string&>(), here);
      } else {
        BadSchema(here, "unsupported keyword \"" + key + "\"");
      }
    }
  }

  const Json& Resolve(const std::string& ref, const std::string& where) const {
    if (ref == "#") return root_;
    for (const std::string container : {"$defs", "definitions"}) {
      const std::string prefix = "#/" + container + "/";
      if (!ref.starts_with(prefix) || ref.find('/', prefix.size()) != std::string::npos) continue;
      std::string name;  // the pointer token unescaped
      for (size_t i = prefix.size(); i < ref.size(); ++i) {
        if (ref[i] == '~' && i + 1 < ref.size() && (ref[i + 1] == '0' || ref[i + 1] == '1')) {
          name += ref[++i] == '0' ? '~' : '/';
        } else {
          name += ref[i];
        }
      }
      const auto defs = root_.find(container);
      if (defs != root_.end() && defs->is_object() && defs->contains(name)) return (*defs)[name];
      BadSchema(where, "$ref " + ref + " does not resolve");
    }
    BadSchema(where, "unsupported $ref " + ref + " (only \"#\", \"#/$defs/NAME\", \"#/definitions/NAME\")");
  }

  const std::regex& Regex(const std::string& pattern, const std::string& where) {
    auto it = regexes_.find(pattern);
    if (it == regexes_.end()) {
      try {
        it = regexes_.emplace(pattern, std::regex(pattern, std::regex::ECMAScript)).first;
      } catch (const std::regex_error& e) {
        BadSchema(where, "std::regex rejects pattern " + Json(pattern).dump() + ": " + e.what());
      }
    }
    return it->second;
  }

  std::optional<std::string> CheckNumber(const Json& schema, const Json& v, const std::string& pointer) {
    struct Bound {
      const char* key;
      int sign;  // +1: v must be above the bound; -1: below
      bool exclusive;
    };
    static constexpr Bound kBounds[] = {
        {"minimum", 1, false}, {"exclusiveMinimum", 1, true}, {"maximum", -1, false}, {"exclusiveMaximum", -1, true}};
    for (const Bound& bound : kBounds) {
      const auto limit = schema.find(bound.key);
      if (limit == schema.end()) continue;
      const int side = CompareNumbers(v, *limit) * bound.sign;
      if (side < 0 || (side == 0 && bound.exclusive)) {
        return Fail(pointer, v.dump() + " violates " + bound.key + " " + limit->dump());
      }
    }
    return std::nullopt;
  }

  std::optional<std::string> CheckString(const Json& schema, const std::string& s, const std::string& pointer) {
    const size_t length = CodePoints(s);
    if (const auto min = schema.find("minLength"); min != schema.end() && length < min->get<double>()) {
      return Fail(pointer, std::to_string(length) + " characters, below minLength " + min->dump());
    }
    if (const auto max = schema.find("maxLength"); max != schema.end() && length > max->get<double>()) {
      return Fail(pointer, std::to_string(length) + " characters, above maxLength " + max->dump());
    }
    const auto pattern = schema.find("pattern");
    if (pattern != schema.end() && !std::regex_search(s, Regex(pattern->get_ref<const std::string&>(), ""))) {
      return Fail(pointer, Describe(Json(s)) + " does not match pattern " + pattern->dump());
    }
    const auto format = schema.find("format");
    if (format != schema.end() && !MatchesFormat(format->get_ref<const std::string&>(), s)) {
      return Fail(pointer, Describe(Json(s)) + " is not a valid " + format->get_ref<const std::string&>());
    }
    return std::nullopt;
  }

  std::optional<std::string> CheckArray(const Json& schema, const Json& v, const std::string& pointer) {
    if (const auto min = schema.find("minItems"); min != schema.end() && v.size() < min->get<double>()) {
      return Fail(pointer, std::to_string(v.size()) + " items, below minItems " + min->dump());
    }
    if (const auto max = schema.find("maxItems"); max != schema.end() && v.size() > max->get<double>()) {
      return Fail(pointer, std::to_string(v.size()) + " items, above maxItems " + max->dump());
    }
    const auto prefix = schema.find("prefixItems");
    const size_t prefix_size = prefix == schema.end() ? 0 : prefix->size();
    const auto items = schema.find("items");
    for (size_t i = 0; i < v.size(); ++i) {
      const Json* item_schema = i < prefix_size ? &(*prefix)[i] : items != schema.end() ? &*items : nullptr;
      if (item_schema == nullptr) break;
      if (auto error = Validate(*item_schema, v[i], pointer + "/" + std::to_string(i), 0)) return error;
    }
    return std::nullopt;
  }

  std::optional<std::string> CheckObject(const Json& schema, const Json& v, const std::string& pointer) {
    if (const auto required = schema.find("required"); required != schema.end()) {
      for (const Json& name : *required) {
        if (!v.contains(name.get_ref<const std::string&>())) {
          return Fail(pointer, "missing required property " + name.dump());
        }
      }
    }
    const auto properties = schema.find("properties");
    const auto additional = schema.find("additionalProperties");
    for (const auto& [key, value] : v.items()) {
      const std::string child = pointer + "/" + PointerToken(key);
      const Json* property_schema = nullptr;
      if (properties != schema.end() && properties->contains(key)) {
        property_schema = &(*properties)[key];
      } else if (additional != schema.end()) {
        if (*additional == false) return Fail(child, "additional property " + Json(key).dump() + " is not allowed");
        property_schema = &*additional;
      }
      if (property_schema == nullptr) continue;
      if (auto error = Validate(*property_schema, value, child, 0)) return error;
    }
    return std::nullopt;
  }

  std::optional<std::string> CheckCombinators(const Json& schema, const Json& v, const std::string& pointer, int refs) {
    if (const auto all = schema.find("allOf"); all != schema.end()) {
      for (const Json& branch : *all) {
        if (auto error = Validate(branch, v, pointer, refs)) return error;
      }
    }
    for (const std::string keyword : {"anyOf", "oneOf"}) {
      const auto branches = schema.find(keyword);
      if (branches == schema.end()) continue;
      std::vector<size_t> matched;
      std::string errors;
      for (size_t i = 0; i < branches->size(); ++i) {
        if (auto error = Validate((*branches)[i], v, pointer, refs)) {
          errors += (errors.empty() ? "" : "; ") + std::to_string(i) + ": " + *error;
        } else {
          matched.push_back(i);
        }
      }
      if (matched.empty()) return Fail(pointer, "matches no " + keyword + " alternative (" + errors + ")");
      if (keyword == "oneOf" && matched.size() > 1) {
        return Fail(pointer, "matches oneOf alternatives " + std::to_string(matched[0]) + " and " +
                                 std::to_string(matched[1]) + ", not exactly one");
      }
    }
    return std::nullopt;
  }

  const Json& root_;
  std::map<std::string, std::regex> regexes_;
};

}  // namespace

std::optional<std::string> SchemaViolation(const nlohmann::json& schema, const nlohmann::json& instance) {
  return Validator(schema).Validate(schema, instance, "", 0);
}

}  // namespace dsv4::testing
