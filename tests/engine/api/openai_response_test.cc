// Runtime updates back to OpenAI-format responses: reasoning apart from the
// answer, DSML tool calls only where the DSML token was generated, stable
// tool-call ids, logprobs of the answer, usage and error objects.
#include "engine/api/openai_response.h"

#include <gtest/gtest.h>

#include "tests/engine/api/api_test_support.h"

namespace dsv4::api {
namespace {

using Json = nlohmann::ordered_json;

class OpenAiResponse : public ::testing::Test {
 protected:
  static void Feed(ResponseCollector& collector, const std::string& text, bool reasoning) {
    for (const GenerationUpdate& u : testing::TextUpdates(text, reasoning)) collector.Add(u);
  }
  static void EndReasoning(ResponseCollector& collector) { collector.Add(testing::ReasoningEnd()); }
  static void Finish(ResponseCollector& collector, FinishReason reason, bool eos) {
    collector.Add(testing::Last(reason, eos));
  }
  static int32_t Id(std::string_view special) { return testing::SpecialId(special); }

  const ResponseIds ids_{"chatcmpl-abc", 1700000000, "deepseek-v4-flash"};
};

using testing::kToolBlock;
using testing::Request;

TEST_F(OpenAiResponse, ChatCompletionWithReasoning) {
  ResponseCollector c(Request(ReasoningMode::kThink, false), dsv4::testing::RealTokenizer());
  Feed(c, "Let me think.", true);
  EndReasoning(c);
  Feed(c, "Blue light scatters.", false);
  EXPECT_FALSE(c.finished());
  Finish(c, FinishReason::kStop, true);
  ASSERT_TRUE(c.finished());
  const Json body = c.Body(ids_);
  EXPECT_EQ(body["id"], "chatcmpl-abc");
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["created"], 1700000000);
  EXPECT_EQ(body["model"], "deepseek-v4-flash");
  const Json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Blue light scatters.");
  EXPECT_EQ(choice["message"]["reasoning_content"], "Let me think.");
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(body["usage"], Json::parse(R"({"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
      "prompt_tokens_details": {"cached_tokens": 16}, "completion_tokens_details": {"reasoning_tokens": 4}})"));
}

TEST_F(OpenAiResponse, NonThinkHasNullReasoningAndLengthStaysLength) {
  ResponseCollector c(Request(ReasoningMode::kChat, false), dsv4::testing::RealTokenizer());
  Feed(c, "Partial ans", false);
  Finish(c, FinishReason::kLength, false);
  const Json choice = c.Body(ids_)["choices"][0];
  EXPECT_TRUE(choice["message"]["reasoning_content"].is_null());
  EXPECT_EQ(choice["message"]["content"], "Partial ans");
  EXPECT_EQ(choice["finish_reason"], "length");
}

TEST_F(OpenAiResponse, GeneratedDsmlBecomesToolCallsWithStableIds) {
  const auto run = [&] {
    ResponseCollector c(Request(ReasoningMode::kThink, true), dsv4::testing::RealTokenizer());
    Feed(c, "Need the weather.", true);
    EndReasoning(c);
    Feed(c, "Checking." + kToolBlock, false);
    Finish(c, FinishReason::kStop, true);
    return c.Body(ids_);
  };
  const Json body = run();
  const Json& message = body["choices"][0]["message"];
  EXPECT_EQ(message["content"], "Checking.");
  EXPECT_EQ(message["reasoning_content"], "Need the weather.");
  ASSERT_EQ(message["tool_calls"].size(), 1u);
  const Json& call = message["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()), Json::parse(R"({"city": "Paris", "days": 3})"));
  EXPECT_TRUE(call["id"].get<std::string>().starts_with("call_"));
  EXPECT_EQ(run()["choices"][0]["message"]["tool_calls"][0]["id"], call["id"]);  // same response id, same call ids
  EXPECT_EQ(body["choices"][0]["finish_reason"], "tool_calls");
}

TEST_F(OpenAiResponse, DsmlSpelledInOrdinaryTokensOrWithoutToolsStaysText) {
  // The same text, but "｜DSML｜" spelled in ordinary tokens: no tool call.
  ResponseCollector spelled(Request(ReasoningMode::kChat, true), dsv4::testing::RealTokenizer());
  std::vector<int32_t> tokens;
  for (const int32_t token : dsv4::testing::RealTokenizer().Encode("Checking." + kToolBlock)) {
    if (token != Id(chat_tokens::kDsml)) {
      tokens.push_back(token);
      continue;
    }
    for (const char* piece : {"｜", "DSML", "｜"}) {
      for (const int32_t t : dsv4::testing::RealTokenizer().Encode(piece)) tokens.push_back(t);
    }
  }
  std::string text;
  for (const int32_t token : tokens) {
    GenerationUpdate u;
    u.tokens.push_back({token, 0, {}});
    u.content = dsv4::testing::RealTokenizer().Decode(std::vector<int32_t>{token});
    text += u.content;
    spelled.Add(u);
  }
  ASSERT_EQ(text, "Checking." + kToolBlock);
  Finish(spelled, FinishReason::kStop, true);
  EXPECT_FALSE(spelled.Body(ids_)["choices"][0]["message"].contains("tool_calls"));

  ResponseCollector no_tools(Request(ReasoningMode::kChat, false), dsv4::testing::RealTokenizer());
  Feed(no_tools, "Checking." + kToolBlock, false);
  Finish(no_tools, FinishReason::kStop, true);
  const Json choice = no_tools.Body(ids_)["choices"][0];
  EXPECT_EQ(choice["message"]["content"], "Checking." + kToolBlock);
  EXPECT_EQ(choice["finish_reason"], "stop");
}

TEST_F(OpenAiResponse, LogprobsCoverTheAnswerOnly) {
  ResponseCollector c(Request(ReasoningMode::kThink, false, true), dsv4::testing::RealTokenizer());
  Feed(c, "Hmm", true);
  EndReasoning(c);
  Feed(c, "Yes no", false);
  Finish(c, FinishReason::kStop, true);
  const Json logprobs = c.Body(ids_)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(logprobs.size(), dsv4::testing::RealTokenizer().Encode("Yes no").size());
  std::string joined;
  for (const Json& entry : logprobs) {
    joined += entry["token"].get<std::string>();
    EXPECT_EQ(entry["logprob"], -0.5f);
    EXPECT_EQ(entry["top_logprobs"].size(), 1u);
    EXPECT_EQ(entry["bytes"].size(), entry["token"].get<std::string>().size());
  }
  EXPECT_EQ(joined, "Yes no");
}

TEST_F(OpenAiResponse, TextCompletion) {
  ResponseCollector c(Request(ReasoningMode::kChat, false, true, Endpoint::kCompletions), dsv4::testing::RealTokenizer());
  Feed(c, " there was", false);
  Finish(c, FinishReason::kLength, false);
  const Json body = c.Body({"cmpl-1", 5, "m"});
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["choices"][0]["text"], " there was");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  const Json& lp = body["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), lp["token_logprobs"].size());
  EXPECT_EQ(lp["text_offset"][0], 0);
}

TEST_F(OpenAiResponse, ErrorObjects) {
  EXPECT_EQ(ErrorObject(400, "temperature must be a number", "temperature"),
            Json::parse(R"({"error": {"message": "temperature must be a number", "type": "invalid_request_error",
                "param": "temperature", "code": null}})"));
  EXPECT_EQ(ErrorObject(500, "the forward pass failed")["error"]["type"], "server_error");
  EXPECT_TRUE(ErrorObject(500, "x")["error"]["param"].is_null());
}

}  // namespace
}  // namespace dsv4::api
