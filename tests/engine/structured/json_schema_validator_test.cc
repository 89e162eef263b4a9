#include "tests/support/json_schema_validator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "tests/support/random_schema.h"

namespace dsv4 {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

std::optional<std::string> Violation(std::string_view schema, std::string_view instance) {
  return testing::SchemaViolation(Json::parse(schema), Json::parse(instance));
}

// The std::invalid_argument message for a schema the validator refuses.
std::string SchemaError(std::string_view schema) {
  try {
    testing::SchemaViolation(Json::parse(schema), nullptr);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

struct Case {
  const char* schema;
  std::vector<const char*> valid, invalid;
};

const Case kCases[] = {
    {R"({"type": "null"})", {"null"}, {"0", "false", "\"\"", "[]", "{}"}},
    {R"({"type": "boolean"})", {"true", "false"}, {"0", "null", "\"true\""}},
    {R"({"type": "string"})", {"\"\"", "\"x\""}, {"1", "null", "[\"x\"]"}},
    {R"({"type": "integer"})", {"0", "-7", "1.0", "-2.0", "1e3", "18446744073709551615"}, {"1.5", "\"1\"", "null"}},
    {R"({"type": "number"})", {"0", "1.5", "-2e-3", "18446744073709551615"}, {"\"1\"", "true"}},
    {R"({"type": "object"})", {"{}", R"({"a": 1})"}, {"[]", "null"}},
    {R"({"type": "array"})", {"[]", "[1, \"a\"]"}, {"{}", "\"[]\""}},
    {R"({"type": ["string", "null"]})", {"\"a\"", "null"}, {"1", "false"}},
    {R"({"type": ["integer", "boolean"]})", {"3", "3.0", "true"}, {"3.5", "null"}},
    {R"({"properties": {"a": {"type": "integer"}, "b": {"type": "string"}}})",
     {"{}", R"({"a": 1})", R"({"a": 1, "b": "x", "c": null})", "7"},
     {R"({"a": "1"})", R"({"b": 2})"}},
    {R"({"required": ["a", "b"]})", {R"({"a": 1, "b": null})", "[]"}, {R"({"a": 1})", "{}"}},
    {R"({"properties": {"a": {}}, "additionalProperties": false})", {"{}", R"({"a": [1]})"}, {R"({"b": 1})"}},
    {R"({"properties": {"a": {}}, "additionalProperties": true})", {R"({"a": 1, "b": 2})"}, {}},
    {R"({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"}})",
     {R"({"a": "x", "b": 2})"},
     {R"({"a": 1})", R"({"b": "2"})"}},
    {R"({"enum": ["red", 1, null, [1, 2], {"k": true}]})",
     {"\"red\"", "1", "1.0", "null", "[1, 2.0]", R"({"k": true})"},
     {"\"Red\"", "2", "true", "[2, 1]", R"({"k": false})", "[1]"}},
    {R"({"const": {"a": [1, {"b": null}], "c": "x"}})",
     {R"({"c": "x", "a": [1.0, {"b": null}]})"},
     {R"({"a": [1, {"b": null}]})", R"({"a": [1, {"b": 0}], "c": "x"})"}},
    {R"({"const": 0})", {"0", "0.0", "-0.0"}, {"false", "null", "\"0\"", "1e-300"}},
    {R"({"const": false})", {"false"}, {"0", "null"}},
    {R"({"items": {"type": "integer"}})", {"[]", "[1, 2, 3]", "\"not an array\""}, {"[1, \"2\"]", "[1.5]"}},
    {R"({"prefixItems": [{"type": "string"}, {"type": "integer"}]})",
     {"[]", "[\"a\"]", "[\"a\", 1]", "[\"a\", 1, null]"},
     {"[1]", "[\"a\", \"b\"]"}},
    {R"({"prefixItems": [{"type": "string"}], "items": false})", {"[]", "[\"a\"]"}, {"[\"a\", 1]"}},
    {R"({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}})",
     {"[\"a\", 1, 2]"},
     {"[\"a\", \"b\"]", "[1]"}},
    {R"({"minItems": 1, "maxItems": 2})", {"[1]", "[1, 2]", "{}"}, {"[]", "[1, 2, 3]"}},
    // Code points, not bytes: é is 2 bytes, 😀 4, each one character.
    {R"({"minLength": 2, "maxLength": 3})",
     {"\"ab\"", "\"abc\"", "\"é😀\"", "\"😀😀😀\"", "5"},
     {"\"a\"", "\"😀\"", "\"abcd\"", "\"é😀é😀\""}},
    {R"({"minimum": -2, "maximum": 5})", {"-2", "5", "5.0", "0.5", "\"x\""}, {"-3", "-2.5", "5.01", "6"}},
    {R"({"exclusiveMinimum": -2, "exclusiveMaximum": 5.5})", {"-1", "-1.99", "5.4"}, {"-2", "-2.0", "5.5", "6"}},
    {R"({"maximum": 9223372036854775807})",
     {"9223372036854775807", "-9223372036854775808"},
     {"9223372036854775808", "18446744073709551615"}},
    {R"({"minimum": 18446744073709551615})", {"18446744073709551615"}, {"18446744073709551614", "-1"}},
    // Searched, not anchored, unless the pattern anchors itself.
    {R"({"pattern": "b+"})", {"\"abbc\"", "\"b\"", "7"}, {"\"ac\"", "\"\""}},
    {R"({"pattern": "^[a-z]{2,3}$"})", {"\"ab\"", "\"abc\""}, {"\"a\"", "\"abcd\"", "\"aB\"", "\"xab\\n\""}},
    {R"({"format": "date"})",
     {"\"2024-02-29\"", "\"2000-02-29\"", "\"1999-12-31\"", "7"},
     {"\"2023-02-29\"", "\"1900-02-29\"", "\"2024-13-01\"", "\"2024-04-31\"", "\"2024-1-01\"",
      "\"2024-01-01T00:00:00Z\""}},
    {R"({"format": "time"})",
     {"\"12:34:56Z\"", "\"00:00:00z\"", "\"23:59:59.123456+05:30\"", "\"08:00:00-08:00\""},
     {"\"12:34:56\"", "\"24:00:00Z\"", "\"12:60:00Z\"", "\"12:34:56.Z\"", "\"12:34:56+5:30\"", "\"1:02:03Z\""}},
    {R"({"format": "date-time"})",
     {"\"2024-02-29T12:34:56Z\"", "\"2024-02-29t12:34:56.5+01:00\""},
     {"\"2024-02-29 12:34:56Z\"", "\"2024-02-30T12:34:56Z\"", "\"2024-02-29T12:34:56\"", "\"2024-02-29\""}},
    {R"({"format": "uuid"})",
     {"\"123e4567-e89b-12d3-a456-426614174000\"", "\"123E4567-E89B-12D3-A456-426614174000\""},
     {"\"123e4567e89b12d3a456426614174000\"", "\"123e4567-e89b-12d3-a456-42661417400g\"",
      "\"{123e4567-e89b-12d3-a456-426614174000}\""}},
    {R"({"format": "email"})",
     {"\"a@b.co\"", "\"first.last+tag@mail.example.org\"", "\"x_y@a-b.io\""},
     {"\"plain\"", "\"a@b\"", "\"a@@b.co\"", "\"a.@b.co\"", "\".a@b.co\"", "\"a..b@c.co\"", "\"a@-b.co\"",
      "\"a b@c.co\""}},
    {R"({"format": "ipv4"})",
     {"\"0.0.0.0\"", "\"192.168.1.255\"", "\"255.255.255.255\""},
     {"\"256.1.1.1\"", "\"1.2.3\"", "\"1.2.3.4.5\"", "\"01.2.3.4\"", "\"1.2.3.a\"", "\"1..2.3\""}},
    {R"({"anyOf": [{"type": "integer"}, {"minimum": 10}]})", {"3", "10", "10.5", "\"x\""}, {"3.5", "9.5"}},
    {R"({"oneOf": [{"type": "integer"}, {"minimum": 10}]})", {"3", "10.5", "\"x\""}, {"3.5", "10"}},
    {R"({"allOf": [{"type": "integer"}, {"minimum": 10}]})", {"10", "11"}, {"9", "10.5"}},
    {R"({"$defs": {"pos": {"type": "integer", "minimum": 1}}, "items": {"$ref": "#/$defs/pos"}})",
     {"[1, 2]"},
     {"[0]", "[\"1\"]"}},
    {R"({"definitions": {"a/b~c": {"type": "string"}}, "properties": {"x": {"$ref": "#/definitions/a~1b~0c"}}})",
     {R"({"x": "s"})"},
     {R"({"x": 1})"}},
    // $ref beside other keywords: both apply.
    {R"({"$defs": {"small": {"maximum": 5}}, "$ref": "#/$defs/small", "minimum": 1})", {"1", "5"}, {"0", "6"}},
    // Recursion through the root: a tree of integers.
    {R"({"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#"}}},
        "required": ["v"], "additionalProperties": false})",
     {R"({"v": 1})", R"({"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}, {"v": 4}]})"},
     {R"({"v": 1, "kids": [{"v": 2, "kids": [{"w": 3}]}]})", R"({"v": 1, "kids": [{"v": 2, "kids": [{"v": "3"}]}]})"}},
    {"true", {"null", "1", R"({"a": [1]})"}, {}},
    {"false", {}, {"null", "1", "{}"}},
    {R"({"properties": {"a": true, "b": false}})", {R"({"a": 1})"}, {R"({"b": 1})"}},
    {R"({"title": "t", "description": "d", "default": 1, "examples": [1], "$schema": "x", "$id": "y", "$comment": "z",
        "type": "integer"})",
     {"1"},
     {"\"1\""}},
};

TEST(JsonSchemaValidator, EveryKeywordAcceptsValidAndRejectsInvalidInstances) {
  for (const Case& c : kCases) {
    for (const char* instance : c.valid) {
      EXPECT_EQ(Violation(c.schema, instance), std::nullopt) << c.schema << "\n  valid: " << instance;
    }
    for (const char* instance : c.invalid) {
      EXPECT_NE(Violation(c.schema, instance), std::nullopt) << c.schema << "\n  invalid: " << instance;
    }
  }
}

TEST(JsonSchemaValidator, ErrorNamesThePointerOfTheFirstViolation) {
  const std::string schema = R"({"properties": {"a/b": {"items": {"type": "integer"}}, "c~": {"required": ["d"]}}})";
  EXPECT_THAT(Violation(schema, R"({"a/b": [1, 2, "x", "y"]})").value_or(""),
              ::testing::StartsWith(R"(at "/a~1b/2": expected type "integer", got string)"));
  EXPECT_THAT(Violation(schema, R"({"c~": {}})").value_or(""),
              HasSubstr(R"(at "/c~0": missing required property "d")"));
  EXPECT_THAT(Violation(R"({"type": "string"})", "1").value_or(""), ::testing::StartsWith(R"(at "": )"));
  EXPECT_THAT(Violation(R"({"additionalProperties": false})", R"({"x": 1})").value_or(""),
              HasSubstr(R"(at "/x": additional property "x" is not allowed)"));
  EXPECT_THAT(Violation(R"({"maxLength": 2})", R"("abc")").value_or(""), HasSubstr("maxLength 2"));
  EXPECT_THAT(Violation(R"({"oneOf": [{"type": "integer"}, {"type": "number"}]})", "1").value_or(""),
              HasSubstr("matches oneOf alternatives 0 and 1"));
  EXPECT_THAT(Violation(R"({"anyOf": [{"type": "integer"}, {"type": "null"}]})", "\"x\"").value_or(""),
              HasSubstr("matches no anyOf alternative"));
}

TEST(JsonSchemaValidator, UnsupportedOrMalformedSchemasThrow) {
  EXPECT_THAT(SchemaError(R"({"uniqueItems": true})"), HasSubstr(R"(unsupported keyword "uniqueItems")"));
  EXPECT_THAT(SchemaError(R"({"patternProperties": {}})"), HasSubstr("patternProperties"));
  EXPECT_THAT(SchemaError(R"({"format": "hostname"})"), HasSubstr(R"(unsupported format "hostname")"));
  EXPECT_THAT(SchemaError(R"({"type": "float"})"), HasSubstr("unknown type"));
  EXPECT_THAT(SchemaError(R"({"items": [{"type": "string"}]})"), HasSubstr("prefixItems"));
  EXPECT_THAT(SchemaError(R"({"pattern": "(unclosed"})"), HasSubstr("pattern"));
  EXPECT_THAT(SchemaError(R"({"$ref": "#/$defs/missing"})"), HasSubstr("does not resolve"));
  EXPECT_THAT(SchemaError(R"({"$ref": "https://example.com/s.json"})"), HasSubstr("unsupported $ref"));
  EXPECT_THAT(SchemaError(R"({"$ref": "#/properties/a"})"), HasSubstr("unsupported $ref"));
  EXPECT_THAT(SchemaError(R"({"$ref": "#"})"), HasSubstr("loops"));
  EXPECT_THAT(SchemaError(R"({"minLength": -1})"), HasSubstr("minLength"));
  EXPECT_THAT(SchemaError(R"({"required": "a"})"), HasSubstr("required"));
  EXPECT_THAT(SchemaError("3"), HasSubstr("object or a boolean"));
  // Anywhere in the schema, whether or not the instance reaches it; the location is named.
  EXPECT_THAT(SchemaError(R"({"anyOf": [true, {"properties": {"x": {"if": {}}}}]})"),
              HasSubstr(R"(at "#/anyOf/1/properties/x/if": unsupported keyword "if")"));
  EXPECT_THAT(SchemaError(R"({"$defs": {"unused": {"not": {}}}})"), HasSubstr(R"(unsupported keyword "not")"));
}

// Visits every subschema of `schema`, itself included.
void ForEachSubschema(const Json& schema, const std::function<void(const Json&)>& visit) {
  visit(schema);
  if (!schema.is_object()) return;
  for (const char* key : {"properties", "$defs", "definitions"}) {
    if (schema.contains(key)) {
      for (const Json& child : schema[key]) ForEachSubschema(child, visit);
    }
  }
  for (const char* key : {"items", "additionalProperties"}) {
    if (schema.contains(key)) ForEachSubschema(schema[key], visit);
  }
  for (const char* key : {"prefixItems", "anyOf", "oneOf", "allOf"}) {
    if (schema.contains(key)) {
      for (const Json& child : schema[key]) ForEachSubschema(child, visit);
    }
  }
}

bool HasType(const Json& schema, const std::string& type) {
  if (!schema.is_object() || !schema.contains("type")) return false;
  const Json& types = schema["type"];
  return types.is_array() ? std::find(types.begin(), types.end(), type) != types.end() : types == type;
}

// Where outputs could grow without bound, or "" when they cannot.
std::string UnboundedPart(const Json& root) {
  std::string found;
  ForEachSubschema(root, [&](const Json& s) {
    const bool bounded_string = s.contains("maxLength") || s.contains("format") || s.contains("enum") ||
                                s.contains("const") ||
                                (s.contains("pattern") && s["pattern"].get<std::string>().ends_with("$") &&
                                 s["pattern"].get<std::string>().find_first_of("+*") == std::string::npos);
    if (HasType(s, "string") && !bounded_string) found = s.dump();
    if (HasType(s, "array") && !s.contains("maxItems")) found = s.dump();
    if (HasType(s, "object") && s.value("additionalProperties", Json(true)) != false) found = s.dump();
  });
  // $refs must not recurse: peel off definitions whose $refs all lead to
  // peeled ones; any left over lie on a cycle.
  const Json defs = root.value("$defs", root.value("definitions", Json::object()));
  std::map<std::string, std::vector<std::string>> targets;
  for (const auto& [name, body] : defs.items()) {
    targets[name];  // a definition without $refs is acyclic
    ForEachSubschema(body, [&, name = name](const Json& s) {
      if (!s.contains("$ref")) return;
      const std::string& ref = s["$ref"].get_ref<const std::string&>();
      targets[name].push_back(ref.substr(ref.rfind('/') + 1));  // "#" stays "#": the root, a cycle
    });
  }
  std::set<std::string> acyclic;
  for (size_t before = -1; acyclic.size() != before;) {
    before = acyclic.size();
    for (const auto& [name, to] : targets) {
      if (std::all_of(to.begin(), to.end(), [&](const std::string& t) { return acyclic.contains(t); })) {
        acyclic.insert(name);
      }
    }
  }
  if (acyclic.size() < targets.size()) found = "recursive $ref";
  return found;
}

TEST(RandomSchema, SchemasAreSupportedSatisfiableAndBounded) {
  std::mt19937_64 rng(20240601), same_rng(20240601);
  std::vector<size_t> sizes;
  std::map<std::string, int> keywords;
  std::set<std::string> names;
  for (int i = 0; i < 500; ++i) {
    const testing::SchemaWithInstance drawn = testing::RandomSchemaWithInstance(rng);
    ASSERT_EQ(drawn.schema, testing::RandomSchema(same_rng)) << "the same draw from the same rng state";
    ASSERT_TRUE(drawn.schema.is_object()) << drawn.schema.dump();
    // Throws for any keyword outside the subset, anywhere in the schema.
    ASSERT_NO_THROW(testing::SchemaViolation(drawn.schema, nullptr)) << drawn.schema.dump();
    EXPECT_EQ(testing::SchemaViolation(drawn.schema, drawn.instance), std::nullopt) << drawn.schema.dump() << "\n"
                                                                                    << drawn.instance.dump();
    EXPECT_EQ(UnboundedPart(drawn.schema), "") << drawn.schema.dump();
    sizes.push_back(drawn.instance.dump().size());
    ForEachSubschema(drawn.schema, [&](const Json& s) {
      if (!s.is_object()) return;
      for (const auto& [key, value] : s.items()) keywords[key] += 1;
      if (s.contains("type") && s["type"].is_array()) keywords["type list"] += 1;
      if (s.contains("properties")) {
        for (const auto& [name, value] : s["properties"].items()) names.insert(name);
      }
    });
  }
  for (const char* keyword : {"properties",
                              "required",
                              "additionalProperties",
                              "enum",
                              "const",
                              "items",
                              "prefixItems",
                              "minItems",
                              "maxItems",
                              "minLength",
                              "maxLength",
                              "minimum",
                              "maximum",
                              "exclusiveMinimum",
                              "exclusiveMaximum",
                              "pattern",
                              "format",
                              "anyOf",
                              "oneOf",
                              "$ref",
                              "$defs",
                              "definitions",
                              "type list"}) {
    EXPECT_GE(keywords[keyword], 5) << keyword;
  }
  for (const char* name : {"with \"quote\"", "back\\slash", "café", "first name", "a/b", ""}) {
    EXPECT_TRUE(names.contains(name)) << name;
  }
  std::sort(sizes.begin(), sizes.end());
  EXPECT_LT(sizes[sizes.size() / 2], 200u) << "median instance bytes";
  EXPECT_LT(sizes[sizes.size() * 9 / 10], 400u) << "90th percentile instance bytes";
}

TEST(RandomSchema, UnboundedSchemasAreSatisfiableAndSometimesRecursive) {
  std::mt19937_64 rng(7);
  testing::RandomSchemaOptions options;
  options.bounded = false;
  int unbounded = 0;
  for (int i = 0; i < 300; ++i) {
    const testing::SchemaWithInstance drawn = testing::RandomSchemaWithInstance(rng, options);
    EXPECT_EQ(testing::SchemaViolation(drawn.schema, drawn.instance), std::nullopt) << drawn.schema.dump() << "\n"
                                                                                    << drawn.instance.dump();
    unbounded += UnboundedPart(drawn.schema) != "";
  }
  EXPECT_GT(unbounded, 30);
}

TEST(RandomSchema, OptionsLimitTheKeywordsAndTheNesting) {
  std::mt19937_64 rng(11);
  testing::RandomSchemaOptions options;
  options.allow_patterns = options.allow_refs = options.allow_any_of = false;
  options.max_depth = 0;
  for (int i = 0; i < 200; ++i) {
    const testing::SchemaWithInstance drawn = testing::RandomSchemaWithInstance(rng, options);
    EXPECT_EQ(testing::SchemaViolation(drawn.schema, drawn.instance), std::nullopt) << drawn.schema.dump();
    EXPECT_FALSE(drawn.instance.is_object() || drawn.instance.is_array()) << drawn.schema.dump();
    ForEachSubschema(drawn.schema, [&](const Json& s) {
      for (const char* key : {"pattern", "$ref", "anyOf", "oneOf"}) EXPECT_FALSE(s.contains(key)) << s.dump();
    });
  }
  options.max_depth = 1;
  options.max_properties = 2;
  for (int i = 0; i < 200; ++i) {
    const Json schema = testing::RandomSchema(rng, options);
    ForEachSubschema(schema, [&](const Json& s) {
      if (s.contains("properties")) {
        EXPECT_LE(s["properties"].size(), 2u) << schema.dump();
      }
      if (s.contains("items")) {
        EXPECT_FALSE(HasType(s["items"], "object")) << schema.dump();
      }
    });
  }
}

}  // namespace
}  // namespace dsv4
