#include "engine/text/chat_format.h"

#include <gtest/gtest.h>

#include <fstream>

#include "loader/error.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kMaxPrefix =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\nYou MUST be very thorough in your thinking and "
    "comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all "
    "potential paths, edge cases, and adversarial scenarios.\nExplicitly write out your entire deliberation process, "
    "documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no "
    "assumption is left unchecked.\n\n";

std::vector<Json> Cases(const std::string& file) {
  std::vector<Json> rows;
  std::ifstream in(testing::DataPath("chat/" + file));
  for (std::string line; std::getline(in, line);) rows.push_back(Json::parse(line));
  return rows;
}

TEST(ChatFormat, EveryFixtureCaseIsByteIdentical) {
  int count = 0;
  for (const std::string file : {"official_cases.jsonl", "cases.jsonl"}) {
    for (const Json& row : Cases(file)) {
      EXPECT_EQ(RenderChat(row["messages"], ParseReasoningMode(row["mode"].get<std::string>())),
                row["prompt"].get<std::string>())
          << row["name"];
      ++count;
    }
  }
  EXPECT_EQ(count, 16);
}

TEST(ChatFormat, ThreeModesOfOneTurn) {
  const Json messages = SingleTurnConversation("Hi", "Be brief.");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kChat), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜></think>");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kThink), "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜><think>");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kThinkMax),
            "<｜begin▁of▁sentence｜>" + std::string(kMaxPrefix) + "Be brief.<｜User｜>Hi<｜Assistant｜><think>");
  EXPECT_EQ(RenderChat(SingleTurnConversation("Hi", std::nullopt), ReasoningMode::kChat),
            "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜></think>");
  EXPECT_EQ(ParseReasoningMode("think-max"), ReasoningMode::kThinkMax);
  EXPECT_EQ(ReasoningModeName(ReasoningMode::kThink), "think");
  EXPECT_THROW(ParseReasoningMode("max"), Error);
}

TEST(ChatFormat, ToolResultsFollowTheOrderOfTheCallsAndMergeWithUserText) {
  const Json messages = Json::parse(R"([
    {"role": "system", "content": "S", "tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": 1.5}}}]},
    {"role": "user", "content": "Q"},
    {"role": "assistant", "reasoning_content": "R", "content": "", "tool_calls": [
      {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": \"x\", \"n\": [1, 2.0], \"o\": {\"k\": null}}"}},
      {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "not json"}}]},
    {"role": "tool", "tool_call_id": "c2", "content": "second"},
    {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "first"}, {"type": "image"}]},
    {"role": "user", "content": "and?"}
  ])");
  const std::string expected_tail =
      "<｜User｜>Q<｜Assistant｜><think>R</think>\n\n<｜DSML｜tool_calls>\n"
      "<｜DSML｜invoke name=\"f\">\n"
      "<｜DSML｜parameter name=\"a\" string=\"true\">x</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"n\" string=\"false\">[1, 2.0]</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"o\" string=\"false\">{\"k\": null}</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n"
      "<｜DSML｜invoke name=\"g\">\n"
      "<｜DSML｜parameter name=\"arguments\" string=\"true\">not json</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n"
      "</｜DSML｜tool_calls><｜end▁of▁sentence｜>"
      "<｜User｜><tool_result>first\n\n[Unsupported image]</tool_result>\n\n<tool_result>second</tool_result>\n\nand?"
      "<｜Assistant｜><think>";
  const std::string prompt = RenderChat(messages, ReasoningMode::kThink);
  ASSERT_GE(prompt.size(), expected_tail.size());
  EXPECT_EQ(prompt.substr(prompt.size() - expected_tail.size()), expected_tail);
  EXPECT_NE(prompt.find("{\"name\": \"f\", \"parameters\": {\"x\": 1.5}}\n\nYou MUST strictly follow"), std::string::npos);
}

TEST(ChatFormat, DropThinkingResponseFormatDeveloperReminderAndTasks) {
  // Earlier reasoning and developer turns before the last user turn are dropped in think mode.
  const Json messages = Json::parse(R"([
    {"role": "developer", "content": "D1"},
    {"role": "user", "content": "U1"},
    {"role": "assistant", "reasoning_content": "R1", "content": "A1"},
    {"role": "system", "content": "S2", "response_format": {"type": "json_object"}},
    {"role": "latest_reminder", "content": "today"},
    {"role": "user", "content": "U2"},
    {"role": "assistant", "reasoning_content": "R2", "content": "A2", "wo_eos": true}
  ])");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kThink),
            "<｜begin▁of▁sentence｜><｜User｜>U1<｜Assistant｜></think>A1<｜end▁of▁sentence｜>S2\n\n## Response Format:\n\n"
            "You MUST strictly adhere to the following schema to reply:\n{\"type\": \"json_object\"}"
            "<｜latest_reminder｜>today<｜User｜>U2<｜Assistant｜><think>R2</think>A2");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kChat),
            "<｜begin▁of▁sentence｜><｜User｜>D1<｜User｜>U1<｜Assistant｜></think>A1<｜end▁of▁sentence｜>S2\n\n## Response "
            "Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{\"type\": \"json_object\"}"
            "<｜latest_reminder｜>today<｜User｜>U2<｜Assistant｜></think>A2");
  // Non-action tasks append their token directly; the assistant turn after a task has no reasoning.
  const Json task = Json::parse(R"([{"role": "user", "content": "page", "task": "title"},
                                    {"role": "assistant", "reasoning_content": "x", "content": "T"}])");
  EXPECT_EQ(RenderChat(task, ReasoningMode::kThink),
            "<｜begin▁of▁sentence｜><｜User｜>page<｜title｜>T<｜end▁of▁sentence｜>");
  const Json action = Json::parse(R"([{"role": "user", "content": "q", "task": "action"}])");
  EXPECT_EQ(RenderChat(action, ReasoningMode::kThink),
            "<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜><think><｜action｜>");
}

TEST(ChatFormat, ToolCallWithoutArgumentsKeepsTheEmptyLine) {
  const Json messages = Json::parse(R"([{"role": "user", "content": "q"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "now", "arguments": "{}"}}]}])");
  EXPECT_EQ(RenderChat(messages, ReasoningMode::kChat),
            "<｜begin▁of▁sentence｜><｜User｜>q<｜Assistant｜></think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"now\">\n\n"
            "</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>");
}

void ExpectRenderError(const std::string& messages, const std::string& fragment) {
  try {
    RenderChat(Json::parse(messages), ReasoningMode::kChat);
    ADD_FAILURE() << "no error for " << messages;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ChatFormat, BadConversationsAreClearErrors) {
  ExpectRenderError(R"({"role": "user"})", "JSON array");
  ExpectRenderError(R"([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])",
                    "messages[1]: unknown role \"robot\"");
  ExpectRenderError(R"([{"content": "a"}])", "messages[0]: message has no \"role\"");
  ExpectRenderError(R"([{"role": "developer", "content": ""}])", "developer message needs non-empty content");
  ExpectRenderError(R"([{"role": "user", "content": "a", "task": "dance"}])", "unknown task \"dance\"");
  ExpectRenderError(R"([{"role": "system", "content": "a", "tools": [{"name": "f"}]}])", "has no \"function\"");
  ExpectRenderError(R"([{"role": "user", "content": [{"type": "text", "text": "a"}]}])", "content must be a string");
  ExpectRenderError(R"([{"role": "user", "content": "a"}, {"role": "assistant", "tool_calls": [{"function": {}}]}])",
                    "function.name must be a string");
}

}  // namespace
}  // namespace dsv4
