// dsv4 tokenize and dsv4 render, run as a user would.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using testing::DataPath;
using testing::RunCli;

std::string TokenizerArg() { return "-t '" + DataPath("tokenizer/tokenizer.json") + "'"; }

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> rows;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) rows.push_back(Json::parse(line));
  return rows;
}

TEST(TokenizeCli, GoldenIdsInOrderWithOtherFieldsKept) {
  const auto result = RunCli("tokenize " + TokenizerArg() + " --input '" + DataPath("tokenizer/golden_ids.jsonl") + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<Json> expected = JsonLines(testing::ReadFile(DataPath("tokenizer/golden_ids.jsonl")));
  const std::vector<Json> rows = JsonLines(result.out);
  ASSERT_EQ(rows.size(), expected.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    // Same keys in the same order ("ids" was already there and is overwritten in place).
    EXPECT_EQ(rows[i], expected[i]) << i;
  }
}

TEST(TokenizeCli, TextToIdsAndBackWithPythonJsonOutput) {
  const auto encoded = RunCli("tokenize " + TokenizerArg(),
                              "{\"id\": 7, \"text\": \"Hello, 世界! <think>\"}\n\n{\"text\": \"\", \"z\": [1.0]}\n");
  ASSERT_EQ(encoded.exit_code, 0) << encoded.err;
  EXPECT_EQ(encoded.out,
            "{\"id\": 7, \"text\": \"Hello, 世界! <think>\", \"ids\": [19923, 14, 223, 3427, 3, 223, 128821]}\n"
            "{\"text\": \"\", \"z\": [1.0], \"ids\": []}\n");
  const auto decoded = RunCli("tokenize --decode " + TokenizerArg(), "{\"ids\": [19923, 14, 223, 3427, 3, 223, 128821]}\n");
  ASSERT_EQ(decoded.exit_code, 0) << decoded.err;
  EXPECT_EQ(decoded.out, "{\"ids\": [19923, 14, 223, 3427, 3, 223, 128821], \"text\": \"Hello, 世界! <think>\"}\n");
}

TEST(TokenizeCli, BadInputNamesTheLine) {
  auto result = RunCli("tokenize " + TokenizerArg(), "{\"text\": \"ok\"}\n{\"text\": \"bad \xFF byte\"}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("line 2"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("UTF-8"), std::string::npos) << result.err;
  EXPECT_EQ(result.out, "{\"text\": \"ok\", \"ids\": [633]}\n");  // rows before the bad one were written

  result = RunCli("tokenize --decode " + TokenizerArg(), "{\"ids\": [1]}\n{\"ids\": [3, 129280]}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("line 2: token id 129280 is out of range (vocabulary size 129280)"), std::string::npos)
      << result.err;

  result = RunCli("tokenize " + TokenizerArg(), "{\"txt\": \"x\"}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("line 1: row has no \"text\" string"), std::string::npos) << result.err;

  result = RunCli("tokenize -t /nonexistent.json", "");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("/nonexistent.json"), std::string::npos) << result.err;
}

TEST(RenderCli, FixtureConversationsRenderExactlyAndTokenize) {
  const auto result = RunCli("render " + TokenizerArg() + " --input '" + DataPath("chat/cases.jsonl") + "'");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<Json> expected = JsonLines(testing::ReadFile(DataPath("chat/cases.jsonl")));
  const std::vector<Json> rows = JsonLines(result.out);
  ASSERT_EQ(rows.size(), expected.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i]["prompt"], expected[i]["prompt"]) << expected[i]["name"];
    ASSERT_TRUE(rows[i]["ids"].is_array());
    EXPECT_EQ(rows[i]["ids"][0], 0);  // the BOS the template writes, and only one
    EXPECT_NE(rows[i]["ids"][1], 0);
  }
}

TEST(RenderCli, ModeDefaultsToChatAndBadRowsNameTheLine) {
  auto result = RunCli("render", "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
            "\"prompt\": \"<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>\"}\n");
  result = RunCli("render", "{\"messages\": [], \"mode\": \"fast\"}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("line 1: unknown reasoning mode \"fast\""), std::string::npos) << result.err;
  result = RunCli("render", "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("messages[0]: unknown role \"bot\""), std::string::npos) << result.err;
}

}  // namespace
}  // namespace dsv4
