// dsv4 logits and dsv4 run end to end on the tiny fixture.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "simd/matrix_engine.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using testing::DataPath;
using testing::RunCli;
using testing::TempDir;

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// `dsv4 logits` over a golden sequence's prompt and decode tokens: every
// prompt row, then every decode row.
struct LogitsRun {
  testing::CommandResult result;
  std::vector<float> prompt_rows, decode_rows;
};

LogitsRun RunLogits(const testing::GoldenSequence& s, const std::string& numerics) {
  TempDir dir;
  LogitsRun run;
  run.result = RunCli("logits -m " + DataPath("tiny-dsv4/checkpoint") + " --numerics " + numerics +
                      " --prompt-ids " + Join(s.prompt) + " --decode-ids " + Join(s.decode_tokens) + " --out " +
                      dir.File("out.json"));
  if (run.result.exit_code != 0) return run;
  const auto json = nlohmann::json::parse(testing::ReadFile(dir.File("out.json")));
  for (const auto& row : json["prefill_logits"]) for (float v : row) run.prompt_rows.push_back(v);
  for (const auto& row : json["decode_logits"]) for (float v : row) run.decode_rows.push_back(v);
  return run;
}

// Scores a run against the golden variant's rows: the stored prompt
// positions (all of them for prompts up to 128 tokens), then every decode row.
std::string GoldenFailures(const testing::Golden& golden, const testing::GoldenSequence& s, const LogitsRun& run,
                           const std::string& variant, const testing::Tolerance& tolerance) {
  std::vector<float> engine;
  for (const int32_t p : golden.Ints(s, "prefill_positions")) {
    engine.insert(engine.end(), run.prompt_rows.begin() + p * 1024, run.prompt_rows.begin() + (p + 1) * 1024);
  }
  const int64_t last_prompt_row = static_cast<int64_t>(engine.size() / 1024) - 1;
  engine.insert(engine.end(), run.decode_rows.begin(), run.decode_rows.end());
  std::vector<float> expected = golden.Floats(s, variant + ".prefill_logits");
  const std::vector<float> decode = golden.Floats(s, variant + ".decode_logits");
  expected.insert(expected.end(), decode.begin(), decode.end());
  return testing::Score(engine, expected, 1024, last_prompt_row, tolerance).failures;
}

TEST(LogitsCli, ShortSequenceMatchesGoldenB) {
  testing::Golden golden;
  const testing::GoldenSequence& s = golden.sequences()[0];
  const LogitsRun run = RunLogits(s, "smooth");
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_EQ(run.result.out, "");  // stdout carries nothing when --out is given
  EXPECT_EQ(GoldenFailures(golden, s, run, "B", testing::kToleranceB), "");
}

// --numerics fast end to end on the long golden prompt (700 rows: the
// prefill GEMMs run on the matrix engine) against A with C's tolerances;
// without a bf16 unit, a one-line error that names the option.
TEST(LogitsCli, NumericsFastMatchesGoldenAWithCTolerances) {
  testing::Golden golden;
  const testing::GoldenSequence& s = golden.sequences()[2];
  const LogitsRun run = RunLogits(s, "fast");
  if (Bf16MatrixUnit().empty()) {
    EXPECT_EQ(run.result.exit_code, 1);
    EXPECT_NE(run.result.err.find("--numerics fast: this CPU has no bf16 matrix unit"), std::string::npos)
        << run.result.err;
    return;
  }
  ASSERT_EQ(run.result.exit_code, 0) << run.result.err;
  EXPECT_EQ(GoldenFailures(golden, s, run, "A", testing::kToleranceC), "");
}

TEST(LogitsCli, LastPositionOnlyAndIdsFromFile) {
  TempDir dir;
  testing::WriteFile(dir.File("ids.txt"), "348, 59,\n580\n");
  const auto result = RunCli("logits -m " + DataPath("tiny-dsv4/checkpoint") + " --prompt-ids @" +
                             dir.File("ids.txt") + " --positions last --chunk 2 --out " + dir.File("out.json"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto json = nlohmann::json::parse(testing::ReadFile(dir.File("out.json")));
  EXPECT_EQ(json["prefill_logits"].size(), 1u);
  EXPECT_EQ(json["prefill_logits"][0].size(), 1024u);
  EXPECT_EQ(json["decode_logits"].size(), 0u);
}

// A device is written in place: renaming a finished temp file over it (what
// protects regular files) would replace /dev/null with a file.
TEST(LogitsCli, OutToADeviceWritesInPlace) {
  const auto result = RunCli("logits -m " + DataPath("tiny-dsv4/checkpoint") + " --prompt-ids 1,2 --out /dev/null");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_TRUE(std::filesystem::is_character_file("/dev/null"));
}

TEST(RunCli, GreedyIdsMatchGoldenDecode) {
  testing::Golden golden;
  const testing::GoldenSequence& s = golden.sequences()[0];  // short_greedy
  const auto result = RunCli("run -m " + DataPath("tiny-dsv4/checkpoint") + " --prompt-ids " + Join(s.prompt) +
                             " -n " + std::to_string(s.decode_tokens.size()) + " --temperature 0");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, Join(s.decode_tokens) + "\n");
}

// Under a budget that leaves room for only part of the routed experts, the
// experts are paged through the weight store's cache: same greedy tokens.
TEST(RunCli, PagedExpertsUnderMemBudgetGiveTheSameTokens) {
  testing::Golden golden;
  const testing::GoldenSequence& s = golden.sequences()[0];  // short_greedy
  const auto result = RunCli("run -m " + DataPath("tiny-dsv4/checkpoint") + " --prompt-ids " + Join(s.prompt) +
                             " -n " + std::to_string(s.decode_tokens.size()) + " --mem-budget 13M --temperature 0");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("routed experts paged"), std::string::npos) << result.err;
  EXPECT_EQ(result.out, Join(s.decode_tokens) + "\n");
}

struct BadInput {
  std::string args;
  std::string message;  // must appear in the one-line error
};

TEST(LogitsCli, BadInputGivesOneLineError) {
  TempDir dir;
  std::string long_prompt = "1";
  for (int i = 0; i < 8192; ++i) long_prompt += ",1";
  testing::WriteFile(dir.File("long.txt"), long_prompt);
  const std::string model = " -m " + DataPath("tiny-dsv4/checkpoint");
  const std::string out = " --out " + dir.File("out.json");
  const std::vector<BadInput> cases = {
      {"logits -m " + dir.File("missing") + " --prompt-ids 1" + out, "model directory not found"},
      {"logits" + model + " --prompt-ids 1,1024" + out, "--prompt-ids token 1024"},
      {"logits" + model + " --prompt-ids 1,x" + out, "--prompt-ids"},
      {"logits" + model + " --prompt-ids @" + dir.File("long.txt") + out, "max_position_embeddings"},
      {"logits" + model + " --prompt-ids 1 --numerics quick" + out, "--numerics"},
      {"logits" + model + " --prompt-ids 1", "--out"},
      {"run" + model + " --prompt-ids 1 --bogus", "bogus"},
      {"logits" + model + " --prompt-ids 1 --mem-budget 1M" + out, "less than the dense weights"},
      {"logits" + model + " --prompt-ids 1 --mem-budget lots" + out, "--mem-budget"},
  };
  for (const BadInput& c : cases) {
    const auto result = RunCli(c.args);
    EXPECT_NE(result.exit_code, 0) << c.args;
    EXPECT_NE(result.err.find(c.message), std::string::npos) << c.args << "\n" << result.err;
    EXPECT_LT(result.exit_code, 128) << "crashed: " << c.args;
  }
}

}  // namespace
}  // namespace dsv4
