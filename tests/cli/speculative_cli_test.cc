// `--speculative` end to end on the random model with the real
// tokenizer: `run` prints exactly what it prints without drafts (sampled, in
// think mode with a stop string and a reasoning budget, and with a JSON
// schema), as do `chat` and `batch`, and a wrong value is one clear line.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using testing::RunCli;
using testing::ShellQuote;

const char* kSchema = R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
  "age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"],"additionalProperties":false})";

TEST(SpeculativeCli, RunPrintsTheSameWithAndWithoutDrafts) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("schema.json"), kSchema);
  const std::string model = " -m " + ShellQuote(testing::TextModelDir());
  const std::vector<std::string> runs = {
      "run" + model + " -p 'Tell me a story' --mode think --seed 5 --temperature 0.9 --top-p 0.9 "
      "--presence-penalty 0.4 --reasoning-budget 12 --stop 'e' -n 40",
      "run" + model + " -p 'Count' --mode chat --temperature 0 -n 30",
      "run" + model + " -p 'A person, as JSON' --mode chat --seed 2 --json-schema " +
          ShellQuote(dir.File("schema.json")) + " -n 60",
  };
  for (const std::string& command : runs) {
    const testing::CommandResult off = RunCli(command + " --speculative off");
    ASSERT_EQ(off.exit_code, 0) << off.err;
    EXPECT_EQ(off.err.find("drafts verified"), std::string::npos) << off.err;
    // The default (auto) uses the block this checkpoint has; k = 3 chains it. Sanitized builds run
    // the chain only.
    std::vector<std::string> variants = {" --speculative mtp", "", " --draft-tokens 3"};
    if (testing::kSanitized) variants = {" --draft-tokens 3"};
    for (const std::string& flags : variants) {
      const testing::CommandResult mtp = RunCli(command + flags);
      ASSERT_EQ(mtp.exit_code, 0) << mtp.err;
      EXPECT_EQ(mtp.out, off.out) << command << flags;
      EXPECT_NE(mtp.err.find("drafts verified"), std::string::npos) << mtp.err;
    }
  }
}

TEST(SpeculativeCli, ChatAndBatchAnswerTheSame) {
  testing::TempDir dir;
  const std::string model = " -m " + ShellQuote(testing::TextModelDir());
  const std::string chat = "chat" + model + " --seed 3 -n 24";
  const testing::CommandResult off = RunCli(chat + " --speculative off", "Hello\nAnd then?\n");
  const testing::CommandResult mtp = RunCli(chat + " --speculative mtp", "Hello\nAnd then?\n");
  ASSERT_EQ(off.exit_code, 0) << off.err;
  EXPECT_EQ(mtp.out, off.out);

  std::string input;
  for (int i = 0; i < 4; ++i) {
    input += R"({"custom_id":"r)" + std::to_string(i) +
             R"(","method":"POST","url":"/v1/chat/completions","body":{"messages":[{"role":"user","content":"Item )" +
             std::to_string(i) + R"("}],"max_tokens":20,"temperature":0.8}})" + "\n";
  }
  testing::WriteFile(dir.File("in.jsonl"), input);
  std::map<std::string, nlohmann::json> answers[2];
  for (int on = 0; on < 2; ++on) {
    const std::string out = dir.File("out" + std::to_string(on) + ".jsonl");
    const testing::CommandResult r = RunCli("batch" + model + " --input " + ShellQuote(dir.File("in.jsonl")) +
                                            " --output " + ShellQuote(out) + " --parallel 2 --speculative " +
                                            (on ? "mtp" : "off"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Records carry ids and timestamps: compare the choices and token counts.
    std::istringstream lines(testing::ReadFile(out));
    for (std::string line; std::getline(lines, line);) {
      const nlohmann::json record = nlohmann::json::parse(line);
      const nlohmann::json& body = record["response"]["body"];
      answers[on][record["custom_id"]] = {body["choices"], body["usage"]["completion_tokens"]};
    }
  }
  EXPECT_EQ(answers[0].size(), 4u);
  EXPECT_EQ(answers[1], answers[0]);
}

TEST(SpeculativeCli, AWrongValueIsOneLine) {
  const testing::CommandResult r =
      RunCli("run -m /nonexistent -p hi --speculative maybe");  // refused before the model is read
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--speculative must be auto, mtp or off"), std::string::npos) << r.err;
  for (const char* k : {"0", "4"}) {
    const testing::CommandResult d = RunCli(std::string("run -m /nonexistent -p hi --draft-tokens ") + k);
    EXPECT_NE(d.exit_code, 0);
    EXPECT_NE(d.err.find("--draft-tokens must be 1 to 3, not " + std::string(k)), std::string::npos) << d.err;
  }
}

}  // namespace
}  // namespace dsv4
