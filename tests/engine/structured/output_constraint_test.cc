#include "engine/structured/output_constraint.h"

#include <chrono>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/text/chat_parser.h"
#include "loader/error.h"

#include "tests/support/json_schema_validator.h"
#include "tests/support/random_schema.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

ConstraintCompiler& Compiler() {
  static ConstraintCompiler compiler(testing::RealTokenizer(), 129280);
  return compiler;
}

struct Walk {
  std::string text;
  bool ended = false;
  int64_t tokens = 0;
  double mask_seconds = 0;
};

// Generates under the constraint with random choices among the allowed
// tokens (end of sequence taken with some probability once allowed).
Walk RandomWalk(const std::shared_ptr<const OutputConstraint>& constraint, uint64_t seed, int64_t max_tokens) {
  std::mt19937_64 rng(seed);
  ConstraintState state(constraint);
  const VocabularyIndex& vocabulary = constraint->vocabulary();
  TokenMask mask;
  Walk walk;
  while (walk.tokens < max_tokens) {
    const auto t0 = std::chrono::steady_clock::now();
    state.Allowed(mask);
    walk.mask_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < vocabulary.vocab_size(); ++id) {
      if (TokenAllowed(mask, id)) allowed.push_back(id);
    }
    EXPECT_FALSE(allowed.empty()) << "no token allowed after " << walk.text;
    if (allowed.empty()) break;
    const int32_t eos = *vocabulary.eos_token();
    int32_t token;
    if (TokenAllowed(mask, eos) && rng() % 4 == 0) {
      token = eos;
    } else {
      token = allowed[rng() % allowed.size()];
    }
    state.Accept(token);
    ++walk.tokens;
    if (token == eos) {
      walk.ended = true;
      break;
    }
    walk.text += token == vocabulary.dsml_token() ? "｜DSML｜" : vocabulary.bytes(token);
  }
  return walk;
}

TEST(OutputConstraint, JsonObjectWalksParse) {
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonObject;
  const auto constraint = Compiler().Compile(spec);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Walk w = RandomWalk(constraint, seed, 400);
    if (!w.ended) continue;
    EXPECT_NO_THROW(Json::parse(w.text)) << w.text;
    EXPECT_TRUE(Json::parse(w.text).is_object()) << w.text;
  }
}

TEST(OutputConstraint, SchemaWalksEndAndParse) {
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonSchema;
  spec.schema = Json::parse(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":12},
      "age":{"type":"integer","minimum":0,"maximum":150},
      "score":{"type":"number","minimum":0,"maximum":1},
      "tags":{"type":"array","items":{"enum":["a","b","c d"]},"maxItems":3},
      "ok":{"type":"boolean"},
      "note":{"type":["string","null"],"maxLength":5}},
      "required":["name","age"],"additionalProperties":false})");
  const auto constraint = Compiler().Compile(spec);
  ASSERT_TRUE(constraint->max_tokens());
  double seconds = 0;
  int64_t tokens = 0;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const Walk w = RandomWalk(constraint, seed, *constraint->max_tokens());
    ASSERT_TRUE(w.ended) << w.text;
    const Json v = Json::parse(w.text);
    EXPECT_TRUE(v.contains("name") && v.contains("age")) << w.text;
    EXPECT_LE(v["age"].get<int64_t>(), 150);
    seconds += w.mask_seconds;
    tokens += w.tokens;
  }
  std::printf("mask: %.3f ms per token over %lld tokens\n", 1e3 * seconds / tokens, static_cast<long long>(tokens));
}

std::shared_ptr<const OutputConstraint> SchemaConstraint(const nlohmann::json& schema) {
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonSchema;
  spec.schema = Json::parse(schema.dump());
  return Compiler().Compile(spec);
}

// The property the issue asks for: on generated schemas, every output a
// random walk produces parses and validates, and a bounded schema always
// ends (finish "stop") within the bound the constraint computes.
TEST(OutputConstraint, RandomBoundedSchemasAlwaysEndValid) {
  std::mt19937_64 rng(2026);
  double seconds = 0;
  int64_t tokens = 0;
  for (int i = 0; i < testing::SizeUnlessSanitized(150, 50); ++i) {
    const testing::SchemaWithInstance drawn = testing::RandomSchemaWithInstance(rng);
    SCOPED_TRACE(drawn.schema.dump());
    const auto constraint = SchemaConstraint(drawn.schema);
    // The grammar takes the witness instance, as written by the library.
    MatchSet set = constraint->matcher().Start();
    ASSERT_TRUE(constraint->matcher().Advance(set, drawn.instance.dump()) && set.accepting) << drawn.instance.dump();
    ASSERT_TRUE(constraint->max_tokens());
    const Walk w = RandomWalk(constraint, static_cast<uint64_t>(i), *constraint->max_tokens());
    ASSERT_TRUE(w.ended) << w.text;
    nlohmann::json value;
    ASSERT_NO_THROW(value = nlohmann::json::parse(w.text)) << w.text;
    const std::optional<std::string> violation = testing::SchemaViolation(drawn.schema, value);
    EXPECT_FALSE(violation) << *violation << "\n" << w.text;
    seconds += w.mask_seconds;
    tokens += w.tokens;
  }
  std::printf("mask: %.3f ms per token over %lld tokens\n", 1e3 * seconds / tokens, static_cast<long long>(tokens));
}

TEST(OutputConstraint, RandomUnboundedSchemasGiveValidOutputWhenTheyEnd) {
  std::mt19937_64 rng(7);
  testing::RandomSchemaOptions options;
  options.bounded = false;
  const int schemas = testing::SizeUnlessSanitized(60, 20);
  int ended = 0;
  for (int i = 0; i < schemas; ++i) {
    const nlohmann::json schema = testing::RandomSchema(rng, options);
    SCOPED_TRACE(schema.dump());
    const Walk w = RandomWalk(SchemaConstraint(schema), static_cast<uint64_t>(i), 300);
    if (!w.ended) continue;
    ++ended;
    nlohmann::json value;
    ASSERT_NO_THROW(value = nlohmann::json::parse(w.text)) << w.text;
    const std::optional<std::string> violation = testing::SchemaViolation(schema, value);
    EXPECT_FALSE(violation) << *violation << "\n" << w.text;
  }
  std::printf("%d of %d walks ended\n", ended, schemas);
  EXPECT_GT(ended, schemas / 6);
}

// The mask against the matcher token by token over the whole vocabulary:
// the trie walk, the string-body tables and the cache allow exactly the
// tokens whose bytes keep the output a valid prefix.
void ExpectMaskIsExact(const std::shared_ptr<const OutputConstraint>& constraint, uint64_t seed, int steps) {
  std::mt19937_64 rng(seed);
  const VocabularyIndex& vocabulary = constraint->vocabulary();
  const GrammarMatcher& matcher = constraint->matcher();
  MatchSet set = matcher.Start();
  TokenMask mask;
  for (int step = 0; step < steps && !set.stacks.empty(); ++step) {
    constraint->masker().Allowed(set, mask);
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < vocabulary.vocab_size(); ++id) {
      const std::string& bytes = vocabulary.bytes(id);
      bool valid = false;
      if (id == vocabulary.eos_token()) {
        valid = set.accepting;
      } else if (id == vocabulary.dsml_token()) {
        valid = !matcher.Step(set, kDsmlSymbol).dead();
      } else if (!bytes.empty()) {
        MatchSet copy = set;
        valid = matcher.Advance(copy, bytes);
      }
      ASSERT_EQ(TokenAllowed(mask, id), valid) << "step " << step << " token " << id << " \"" << bytes << "\"";
      if (valid && id != vocabulary.eos_token()) allowed.push_back(id);
    }
    if (allowed.empty()) break;
    const int32_t token = allowed[rng() % allowed.size()];
    if (token == vocabulary.dsml_token()) {
      set = matcher.Step(set, kDsmlSymbol);
    } else {
      ASSERT_TRUE(matcher.Advance(set, vocabulary.bytes(token)));
    }
  }
}

TEST(OutputConstraint, MaskEqualsTokenByTokenCheck) {
  ExpectMaskIsExact(SchemaConstraint(nlohmann::json::parse(R"({"type":"object","properties":{
      "s":{"type":"string","minLength":2,"maxLength":6},"n":{"type":"integer","minimum":-20,"maximum":300},
      "e":{"enum":["x","y\"z",null]},"d":{"type":"string","format":"date"}},"required":["s","n","e","d"],
      "additionalProperties":false})")), 1, 25);
  OutputSpec any;
  any.format = OutputSpec::Format::kJsonObject;
  ExpectMaskIsExact(Compiler().Compile(any), 2, 25);
}

TEST(OutputConstraint, ToolCallsFollowTheDsmlFormatAndParse) {
  OutputSpec spec;
  spec.tools = OutputSpec::Tools::kRequired;
  spec.tool_list = Json::parse(R"([
      {"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{
          "city":{"type":"string","maxLength":10},"days":{"type":"integer","minimum":1,"maximum":7},
          "units":{"enum":["c","f"]}},"required":["city","days"]}}},
      {"type":"function","function":{"name":"noop","parameters":{"type":"object","properties":{}}}}])");
  const auto constraint = Compiler().Compile(spec);
  ExpectMaskIsExact(constraint, 3, 20);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    const Walk w = RandomWalk(constraint, seed, 600);
    if (!w.ended) continue;
    const ParsedCompletion parsed = ParseCompletion(w.text + std::string(chat_tokens::kEos), ReasoningMode::kChat);
    EXPECT_TRUE(parsed.warnings.empty()) << w.text;
    ASSERT_FALSE(parsed.tool_calls.empty()) << w.text;
    for (const Json& call : parsed.tool_calls) {
      const std::string name = call["function"]["name"];
      const Json arguments = Json::parse(call["function"]["arguments"].get<std::string>());
      if (name == "get_weather") {
        EXPECT_TRUE(arguments.contains("city") && arguments.contains("days")) << w.text;
        EXPECT_GE(arguments["days"].get<int>(), 1);
        EXPECT_LE(arguments["city"].get<std::string>().size(), 40u);
      } else {
        EXPECT_EQ(name, "noop");
        EXPECT_TRUE(arguments.empty());
      }
    }
  }
}

// tool_choice auto: free text, the DSML token only where a block may open,
// then the block is constrained.
TEST(OutputConstraint, AutoToolsAreFreeUntilABlockOpens) {
  OutputSpec spec;
  spec.tools = OutputSpec::Tools::kAuto;
  spec.tool_list = Json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object",
      "properties":{"n":{"type":"integer","minimum":1,"maximum":3}},"required":["n"]}}}])");
  const auto constraint = Compiler().Compile(spec);
  const Tokenizer& tokenizer = testing::RealTokenizer();
  const int32_t dsml = *tokenizer.TokenId(chat_tokens::kDsml);
  ConstraintState state(constraint);
  TokenMask mask;
  state.Allowed(mask);
  EXPECT_FALSE(TokenAllowed(mask, dsml));
  EXPECT_TRUE(TokenAllowed(mask, *tokenizer.TokenId(chat_tokens::kEos)));  // no call at all is fine
  for (const int32_t token : tokenizer.Encode("Let me check.\n\n<")) state.Accept(token);
  state.Allowed(mask);
  EXPECT_TRUE(TokenAllowed(mask, dsml));
  state.Accept(dsml);
  state.Allowed(mask);
  // Now only the block's continuation: "tool_calls>\n".
  for (int32_t id = 0; id < 129280; ++id) {
    if (TokenAllowed(mask, id)) EXPECT_TRUE(std::string("tool_calls>\n").starts_with(tokenizer.TokenBytes(id))) << id;
  }
  EXPECT_THROW(state.Accept(*tokenizer.TokenId(chat_tokens::kEos)), Error);
}

// contracts.md §5: at most 20 significant digits; counted as 20 digits in
// all, whole part and fraction together (a leading 0 included), in ranged
// numbers too.
TEST(OutputConstraint, NumbersKeepTwentySignificantDigits) {
  const auto accepts = [](const char* schema, const std::string& text) {
    const auto constraint = SchemaConstraint(nlohmann::json::parse(schema));
    MatchSet set = constraint->matcher().Start();
    return constraint->matcher().Advance(set, text) && set.accepting;
  };
  const char* any = R"({"type":"number"})";
  EXPECT_TRUE(accepts(any, "12345678901234567890"));
  EXPECT_FALSE(accepts(any, "123456789012345678901"));
  EXPECT_TRUE(accepts(any, "-1234567890.1234567890e-12"));
  EXPECT_FALSE(accepts(any, "1234567890.12345678901"));
  EXPECT_TRUE(accepts(any, "0.1234567890123456789"));
  EXPECT_FALSE(accepts(any, "0.12345678901234567890"));
  const char* unit = R"({"type":"number","minimum":0,"maximum":1})";
  EXPECT_TRUE(accepts(unit, "0.1234567890123456789"));
  EXPECT_FALSE(accepts(unit, "0.12345678901234567890"));
  EXPECT_TRUE(accepts(unit, "1.0000000000000000000"));
  EXPECT_FALSE(accepts(unit, "1.01"));
}

TEST(OutputConstraint, UnsupportedKeywordsAreNamed) {
  const auto error = [](const char* schema) {
    try {
      SchemaConstraint(nlohmann::json::parse(schema));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error(R"({"type":"object","properties":{"a":{"type":"string","if":{}}}})"),
              ::testing::HasSubstr("/properties/a/if: keyword \"if\" is not supported"));
  EXPECT_THAT(error(R"({"type":"array","uniqueItems":true})"), ::testing::HasSubstr("uniqueItems"));
  EXPECT_THAT(error(R"({"type":"string","minLength":5,"maxLength":2})"), ::testing::HasSubstr("maxLength"));
  EXPECT_THAT(error(R"({"$ref":"#/$defs/missing"})"), ::testing::HasSubstr("does not resolve"));
  EXPECT_THAT(error(R"({"type":"string","pattern":"(a)\\1"})"), ::testing::HasSubstr("pattern"));
  EXPECT_THAT(error(R"({"type":"integer","minimum":5,"maximum":4})"), ::testing::HasSubstr("minimum"));
  EXPECT_THAT(error(R"({"type":"string","format":"hostname"})"), ::testing::HasSubstr("format"));
}

TEST(OutputConstraint, TypicalSchemaCompilesOnceAndIsCached) {
  // 20 properties, nesting 3 (contracts.md §5: under 50 ms, then cached).
  Json level3 = {{"type", "object"}, {"properties", Json::object()}};
  for (int i = 0; i < 5; ++i) level3["properties"]["leaf" + std::to_string(i)] = {{"type", "string"}, {"maxLength", 40}};
  Json level2 = {{"type", "object"}, {"properties", {{"inner", level3}}}};
  for (int i = 0; i < 6; ++i) level2["properties"]["mid" + std::to_string(i)] = {{"type", "integer"}};
  Json schema = {{"type", "object"}, {"properties", {{"nested", level2}}}};
  for (int i = 0; i < 7; ++i) schema["properties"]["top" + std::to_string(i)] = {{"enum", {"a", "b", 3}}};
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonSchema;
  spec.schema = schema;
  ConstraintCompiler& compiler = Compiler();  // the vocabulary index is built once, outside the timing
  const auto t0 = std::chrono::steady_clock::now();
  const auto first = compiler.Compile(spec);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // A figure for docs/performance.md (target < 50 ms), not a timed assertion.
  std::printf("typical schema compiled in %.2f ms\n", ms);
  EXPECT_EQ(compiler.Compile(spec), first);  // cached
}

}  // namespace
}  // namespace dsv4
