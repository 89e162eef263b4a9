#include "engine/structured/output_constraint.h"

#include <chrono>
#include <random>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace dsv4
