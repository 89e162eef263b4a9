// Options out of range end with a one-line error naming the option, never a
// crash, an overflow or a silent exit 0.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using testing::RunCli;
using testing::ShellQuote;

std::string Model() { return ShellQuote(testing::DataPath("tiny-dsv4/checkpoint")); }

// Runs `dsv4 ARGS`, expects exit status 1 and ends of stderr with the error
// line; returns stderr.
std::string Refusal(const std::string& args) {
  const testing::CommandResult result = RunCli(args);
  EXPECT_EQ(result.exit_code, 1) << args << "\n" << result.err;
  const size_t last = result.err.rfind('\n', result.err.size() - 2);
  EXPECT_EQ(result.err.compare(last == std::string::npos ? 0 : last + 1, 5, "dsv4 "), 0) << result.err;
  return result.err;
}

TEST(OptionErrors, ByteCountsBeyondRangeAreRefused) {
  for (const char* budget : {"inf", "1e300G", "nan", "-1G", "9E", "12X"}) {
    const std::string error = Refusal("run -m " + Model() + " --prompt-ids 1,2 -n 1 --mem-budget " + budget);
    EXPECT_NE(error.find("--mem-budget: \"" + std::string(budget) + "\""), std::string::npos) << error;
  }
}

TEST(OptionErrors, AnEmptyPromptIsRefusedBeforeTheModelLoads) {
  for (const char* ids : {"\"\"", "' '"}) {
    const std::string error = Refusal("run -m " + Model() + " --prompt-ids " + ids + " -n 1");
    EXPECT_NE(error.find("--prompt-ids: no token ids"), std::string::npos) << error;
    EXPECT_EQ(error.find("loaded "), std::string::npos) << "refused only after the load:\n" << error;
  }
}

// The tiny checkpoint has no tokenizer.json: every command that reads text
// says so before the weights load (minutes for the real model).
TEST(OptionErrors, AMissingTokenizerIsReportedBeforeTheModelLoads) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("in.jsonl"), "");
  for (const std::string& command :
       {"run -m " + Model() + " -p hello -n 1", "chat -m " + Model(), "serve -m " + Model() + " --port 0",
        "batch -m " + Model() + " --input " + ShellQuote(dir.File("in.jsonl")) + " --output " +
            ShellQuote(dir.File("out.jsonl"))}) {
    const std::string error = Refusal(command);
    EXPECT_NE(error.find("tokenizer.json: not found"), std::string::npos) << command << "\n" << error;
    EXPECT_EQ(error.find("loaded "), std::string::npos) << "refused only after the load:\n" << error;
  }
}

TEST(OptionErrors, PromptIdsOutsideTheVocabularyAreRefusedBeforeTheModelLoads) {
  testing::TempDir dir;
  for (const char* ids : {"1,1024", "70000"}) {  // the tiny model's vocabulary is [0, 1024)
    for (const std::string& command :
         {"run -m " + Model() + " -n 1 --prompt-ids=" + ids,
          "logits -m " + Model() + " --out " + ShellQuote(dir.File("l.json")) + " --prompt-ids=" + ids,
          "logits -m " + Model() + " --out " + ShellQuote(dir.File("l.json")) + " --prompt-ids=1 --decode-ids=" + ids}) {
      const std::string error = Refusal(command);
      EXPECT_NE(error.find("-ids token "), std::string::npos) << error;  // names the option
      EXPECT_NE(error.find("is outside the vocabulary [0, 1024)"), std::string::npos) << error;
      EXPECT_EQ(error.find("loaded "), std::string::npos) << "refused only after the load:\n" << error;
    }
  }
}

TEST(OptionErrors, AKvDirectoryThatCannotHoldAFileIsRefusedAtOnce) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("file"), "not a directory");
  const std::string error = Refusal("run -m " + Model() + " --prompt-ids 1,2 -n 1 --kv-dir " +
                                    ShellQuote(dir.File("file") + "/kv"));
  EXPECT_NE(error.find("--kv-dir"), std::string::npos) << error;
}

TEST(OptionErrors, AnUnknownNumaPolicyIsRefusedBeforeTheModelLoads) {
  for (const std::string& command : {"run -m " + Model() + " --prompt-ids 1,2 -n 1", "bench -m " + Model(),
                                    std::string("bench --kernels"), "plan -m " + Model()}) {
    const std::string error = Refusal(command + " --numa interleave");
    EXPECT_NE(error.find("--numa: expected distribute, isolate or off, got \"interleave\""), std::string::npos)
        << command << "\n" << error;
    EXPECT_EQ(error.find("loaded "), std::string::npos) << "refused only after the load:\n" << error;
  }
}

TEST(OptionErrors, HugeBenchDepthsAreRefused) {
  const std::string error = Refusal("bench -m " + Model() + " --depths 99999999999999999k");
  EXPECT_NE(error.find("--depths: \"99999999999999999k\" is too large"), std::string::npos) << error;
}

TEST(OptionErrors, APlotThatCannotBeWrittenIsRefusedBeforeTheRun) {
  const std::string error = Refusal("bench -m " + Model() + " --plot /nonexistent-dir/bench.svg");
  EXPECT_NE(error.find("--plot /nonexistent-dir/bench.svg: cannot write into /nonexistent-dir"), std::string::npos)
      << error;
  EXPECT_EQ(error.find("bench: DRAM read"), std::string::npos) << "refused only after measuring:\n" << error;
}

}  // namespace
}  // namespace dsv4
