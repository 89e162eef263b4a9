#include "engine/text/chat_parser.h"

#include <gtest/gtest.h>

#include <random>

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

// The text the model would generate for the last (assistant) message: the
// rendering of the whole conversation minus that of the conversation before it.
std::string CompletionOf(const Json& messages, ReasoningMode mode) {
  Json before = messages;
  before.erase(before.size() - 1);
  const std::string with = RenderChat(messages, mode), without = RenderChat(before, mode);
  EXPECT_EQ(with.substr(0, without.size()), without);
  return with.substr(without.size());
}

const Json kToolConversation = Json::parse(R"([
  {"role": "system", "content": "S", "tools": [{"type": "function", "function": {"name": "get_weather"}}]},
  {"role": "user", "content": "Weather in 北京 and Paris?"},
  {"role": "assistant", "reasoning_content": "Two cities.\n\nCall twice.", "content": "Let me check.",
   "tool_calls": [
     {"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"北京\", \"unit\": \"celsius\"}"}},
     {"type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Paris\", \"days\": 3, \"hours\": [1.5, null], \"opts\": {\"a\": true}}"}}]}
])");

TEST(ChatParser, ParseInvertsRenderForReasoningContentAndToolCalls) {
  for (const ReasoningMode mode : {ReasoningMode::kThink, ReasoningMode::kThinkMax, ReasoningMode::kChat}) {
    const ParsedCompletion parsed = ParseCompletion(CompletionOf(kToolConversation, mode), mode);
    EXPECT_TRUE(parsed.warnings.empty()) << parsed.warnings.front();
    EXPECT_TRUE(parsed.ended);
    const Json& original = kToolConversation.back();
    EXPECT_EQ(parsed.reasoning_content, IsThinking(mode) ? original["reasoning_content"].get<std::string>() : "");
    EXPECT_EQ(parsed.content, original["content"]);
    ASSERT_EQ(parsed.tool_calls.size(), 2u);
    for (size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(parsed.tool_calls[k]["type"], "function");
      EXPECT_EQ(parsed.tool_calls[k]["function"], original["tool_calls"][k]["function"]);
    }
  }
}

TEST(ChatParser, PlainAnswersAndTheOfficialFixtureTurns) {
  const Json chat = Json::parse(R"([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello <b>!"}])");
  ParsedCompletion parsed = ParseCompletion(CompletionOf(chat, ReasoningMode::kChat), ReasoningMode::kChat);
  EXPECT_EQ(parsed.content, "Hello <b>!");
  EXPECT_TRUE(parsed.warnings.empty());
  EXPECT_EQ(parsed.ToMessage(), Json::parse(R"({"role": "assistant", "content": "Hello <b>!", "reasoning_content": "",
                                                "tool_calls": []})"));
  parsed = ParseCompletion("Let me think.</think>Paris.<｜end▁of▁sentence｜>", ReasoningMode::kThink);
  EXPECT_EQ(parsed.reasoning_content, "Let me think.");
  EXPECT_EQ(parsed.content, "Paris.");
  EXPECT_TRUE(parsed.warnings.empty());
  // Tool call with empty content before it, as in the official test 3.
  parsed = ParseCompletion(
      "用户想知道。</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"search\">\n<｜DSML｜parameter name=\"queries\" "
      "string=\"true\">小柴胡 布洛芬</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>",
      ReasoningMode::kThink);
  EXPECT_TRUE(parsed.warnings.empty());
  EXPECT_EQ(parsed.content, "");
  ASSERT_EQ(parsed.tool_calls.size(), 1u);
  EXPECT_EQ(parsed.tool_calls[0]["function"]["arguments"], "{\"queries\": \"小柴胡 布洛芬\"}");
}

bool HasWarning(const ParsedCompletion& parsed, const std::string& fragment) {
  for (const std::string& w : parsed.warnings) {
    if (w.find(fragment) != std::string::npos) return true;
  }
  return false;
}

TEST(ChatParser, MalformedOutputKeepsWhatItCanAndSaysWhy) {
  // Cut off while reasoning.
  ParsedCompletion p = ParseCompletion("I am still thinking about", ReasoningMode::kThink);
  EXPECT_EQ(p.reasoning_content, "I am still thinking about");
  EXPECT_FALSE(p.ended);
  EXPECT_TRUE(HasWarning(p, "not closed by </think>"));
  // Cut off in the answer.
  p = ParseCompletion("Partial answ", ReasoningMode::kChat);
  EXPECT_EQ(p.content, "Partial answ");
  EXPECT_TRUE(HasWarning(p, "no end-of-sentence token"));
  // A non-JSON value marked string="false", a duplicate, junk, and text after EOS.
  p = ParseCompletion(
      "A\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
      "<｜DSML｜parameter name=\"n\" string=\"false\">not json</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"n\" string=\"false\">2</｜DSML｜parameter>\n"
      "garbage\n<｜DSML｜parameter name=\"m\" string=\"false\">[1, 2]</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>extra",
      ReasoningMode::kChat);
  EXPECT_EQ(p.content, "A");
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0]["function"]["arguments"], "{\"n\": \"not json\", \"m\": [1, 2]}");
  EXPECT_TRUE(HasWarning(p, "is not JSON"));
  EXPECT_TRUE(HasWarning(p, "appears twice"));
  EXPECT_TRUE(HasWarning(p, "garbage"));
  EXPECT_TRUE(HasWarning(p, "after the end-of-sentence token"));
  EXPECT_TRUE(Json::accept(p.tool_calls[0]["function"]["arguments"].get<std::string>()));
  // A call cut off mid-parameter is dropped; the complete one before it is kept.
  p = ParseCompletion(
      "r</think>\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"a\">\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"b\">\n"
      "<｜DSML｜parameter name=\"x\" string=\"true\">unfinished",
      ReasoningMode::kThink);
  ASSERT_EQ(p.tool_calls.size(), 1u);
  EXPECT_EQ(p.tool_calls[0]["function"]["name"], "a");
  EXPECT_EQ(p.tool_calls[0]["function"]["arguments"], "{}");
  EXPECT_TRUE(HasWarning(p, "\"b\" is not closed"));
  // Special tokens where they do not belong.
  p = ParseCompletion("a<think>b</think>c</think>d<｜end▁of▁sentence｜>", ReasoningMode::kThink);
  EXPECT_TRUE(HasWarning(p, "reasoning contains <think>"));
  EXPECT_TRUE(HasWarning(p, "answer contains </think>"));
}

TEST(ChatParser, NeverThrowsOnArbitraryFragments) {
  const std::vector<std::string> pieces = {"<｜DSML｜tool_calls>", "</｜DSML｜tool_calls>", "<｜DSML｜invoke", " name=\"",
                                           "\">", "</｜DSML｜invoke>", "<｜DSML｜parameter", " string=\"false\"",
                                           "</｜DSML｜parameter>", "\n\n", "</think>", "<｜end▁of▁sentence｜>", "x",
                                           "\"", "{", "1"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    for (const ReasoningMode mode : {ReasoningMode::kChat, ReasoningMode::kThink}) {
      const ParsedCompletion p = ParseCompletion(text, mode);
      for (const Json& call : p.tool_calls) {
        EXPECT_TRUE(Json::accept(call["function"]["arguments"].get<std::string>())) << text;
      }
    }
  }
}

}  // namespace
}  // namespace dsv4
