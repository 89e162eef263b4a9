// Streaming chunks carry exactly the text of the non-streaming response:
// reasoning and answer deltas, a tool-call block held back and sent as
// tool_calls, the finish and the usage chunk; completions as text chunks.
#include "engine/api/openai_stream.h"

#include <gtest/gtest.h>

#include "tests/engine/api/api_test_support.h"

namespace dsv4::api {
namespace {

using Json = nlohmann::ordered_json;
using testing::kToolBlock;
using testing::Request;

struct Streamed {
  std::vector<Json> chunks;
  std::string reasoning, content;
  Json tool_calls = Json::array();
  Json finish;
  Json usage;
};

// Runs `updates` through a stream and gathers what the chunks carry.
Streamed Stream(ApiRequest request, const std::vector<GenerationUpdate>& updates, Json* body = nullptr) {
  request.stream_usage = true;
  ResponseStream stream(request, dsv4::testing::RealTokenizer(), {"chatcmpl-s", 7, "m"});
  Streamed out;
  for (const GenerationUpdate& u : updates) {
    for (Json& chunk : stream.Add(u)) out.chunks.push_back(std::move(chunk));
  }
  for (const Json& chunk : out.chunks) {
    if (chunk.contains("usage")) {
      EXPECT_TRUE(chunk["choices"].empty());
      out.usage = chunk["usage"];
      continue;
    }
    const Json& choice = chunk["choices"][0];
    if (!choice["finish_reason"].is_null()) out.finish = choice["finish_reason"];
    if (request.endpoint == Endpoint::kCompletions) {
      EXPECT_EQ(chunk["object"], "text_completion");
      out.content += choice["text"].get<std::string>();
      continue;
    }
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    const Json& delta = choice["delta"];
    if (delta.contains("reasoning_content")) out.reasoning += delta["reasoning_content"].get<std::string>();
    if (delta.contains("content")) out.content += delta["content"].get<std::string>();
    if (delta.contains("tool_calls")) out.tool_calls = delta["tool_calls"];
  }
  if (body) *body = stream.collector().Body({"chatcmpl-s", 7, "m"});
  return out;
}

std::vector<GenerationUpdate> Output(const std::string& reasoning, const std::string& answer, bool eos) {
  std::vector<GenerationUpdate> updates;
  if (!reasoning.empty()) {
    updates = testing::TextUpdates(reasoning, true);
    updates.push_back(testing::ReasoningEnd());
  }
  for (GenerationUpdate& u : testing::TextUpdates(answer, false)) updates.push_back(std::move(u));
  updates.push_back(testing::Last(eos ? FinishReason::kStop : FinishReason::kLength, eos));
  return updates;
}

TEST(OpenAiStream, ChunksCarryTheResponsesText) {
  Json body;
  const Streamed s = Stream(Request(ReasoningMode::kThink, false), Output("Thinking it over.", "The answer.", true), &body);
  EXPECT_EQ(s.chunks.front()["choices"][0]["delta"], Json::parse(R"({"role": "assistant", "content": ""})"));
  const Json& message = body["choices"][0]["message"];
  EXPECT_EQ(s.reasoning, message["reasoning_content"]);
  EXPECT_EQ(s.content, message["content"]);
  EXPECT_EQ(s.content, "The answer.");
  EXPECT_EQ(s.finish, "stop");
  EXPECT_EQ(s.usage, body["usage"]);
  for (const Json& chunk : s.chunks) EXPECT_EQ(chunk["id"], "chatcmpl-s");
}

TEST(OpenAiStream, AToolCallBlockArrivesAsToolCalls) {
  Json body;
  const Streamed s = Stream(Request(ReasoningMode::kChat, true), Output("", "Checking." + kToolBlock, true), &body);
  const Json& message = body["choices"][0]["message"];
  EXPECT_EQ(s.content, "Checking.");  // the blank line and the block are not streamed as text
  EXPECT_EQ(s.content, message["content"]);
  ASSERT_EQ(s.tool_calls.size(), 1u);
  EXPECT_EQ(s.tool_calls[0]["index"], 0);
  EXPECT_EQ(s.tool_calls[0]["id"], message["tool_calls"][0]["id"]);
  EXPECT_EQ(s.tool_calls[0]["function"], message["tool_calls"][0]["function"]);
  EXPECT_EQ(s.finish, "tool_calls");
}

TEST(OpenAiStream, HeldNewlinesWithoutToolCallsAreSentAtTheEnd) {
  Json body;
  const Streamed s = Stream(Request(ReasoningMode::kChat, true), Output("", "Line one\n\nLine two\n\n", false), &body);
  EXPECT_EQ(s.content, "Line one\n\nLine two\n\n");
  EXPECT_EQ(s.content, body["choices"][0]["message"]["content"]);
  EXPECT_TRUE(s.tool_calls.empty());
  EXPECT_EQ(s.finish, "length");
}

TEST(OpenAiStream, CompletionsStreamText) {
  Json body;
  const Streamed s =
      Stream(Request(ReasoningMode::kChat, false, false, Endpoint::kCompletions), Output("", " upon a time", false), &body);
  EXPECT_EQ(s.content, " upon a time");
  EXPECT_EQ(s.content, body["choices"][0]["text"]);
  EXPECT_EQ(s.finish, "length");
}

TEST(OpenAiStream, AFailedRequestEndsWithAnErrorObject) {
  ApiRequest request = Request(ReasoningMode::kChat, false);
  ResponseStream stream(request, dsv4::testing::RealTokenizer(), {"x", 0, "m"});
  GenerationUpdate failed;
  failed.finish = FinishReason::kError;
  failed.error = "the KV spill file is full";
  const std::vector<Json> chunks = stream.Add(failed);
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["error"]["message"], "the KV spill file is full");
  EXPECT_EQ(chunks.back()["error"]["type"], "server_error");
}

}  // namespace
}  // namespace dsv4::api
