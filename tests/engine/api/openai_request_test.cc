// OpenAI-format request bodies to runtime requests with the real tokenizer:
// reasoning modes by DeepSeek's and vLLM's fields, tools in the system
// message, defaults and the context limit, and a RequestError naming the
// field for each kind of bad input.
#include "engine/api/openai_request.h"

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace dsv4::api {
namespace {

using Json = nlohmann::ordered_json;

class OpenAiRequest : public ::testing::Test {
 protected:
  OpenAiRequest() {
    defaults_.sampling.max_tokens = 32768;
    defaults_.sampling.temperature = 0.6;
    defaults_.context_tokens = 1 << 20;
  }

  ApiRequest Chat(const Json& body) { return ParseRequest(Endpoint::kChatCompletions, body, defaults_, testing::RealTokenizer()); }
  std::string Prompt(const ApiRequest& r) { return testing::RealTokenizer().Decode(r.generation.prompt); }
  // The RequestError's message and param for `body`.
  std::pair<std::string, std::string> Refusal(const Json& body, Endpoint endpoint = Endpoint::kChatCompletions) {
    try {
      ParseRequest(endpoint, body, defaults_, testing::RealTokenizer());
    } catch (const RequestError& e) {
      EXPECT_EQ(e.status(), 400);
      return {e.what(), e.param()};
    }
    return {"(accepted)", ""};
  }

  static Json Hello() { return {{"messages", {{{"role", "user"}, {"content", "Hello"}}}}}; }

  RequestDefaults defaults_;
};

TEST_F(OpenAiRequest, EndpointsByUrl) {
  EXPECT_EQ(EndpointForUrl("/v1/chat/completions"), Endpoint::kChatCompletions);
  EXPECT_EQ(EndpointForUrl("/v1/completions"), Endpoint::kCompletions);
  EXPECT_FALSE(EndpointForUrl("/v1/embeddings"));
}

TEST_F(OpenAiRequest, DefaultsFollowTheCommandAndDeepSeeksApi) {
  const ApiRequest r = Chat(Hello());
  EXPECT_EQ(r.mode, ReasoningMode::kThink);  // batch and serve think by default
  EXPECT_TRUE(r.generation.reasoning);
  EXPECT_EQ(Prompt(r), RenderChat(Hello()["messages"], ReasoningMode::kThink));
  EXPECT_EQ(r.generation.sampling.max_tokens, 32768);
  EXPECT_EQ(r.generation.sampling.temperature, 0.6);
  EXPECT_FALSE(r.generation.sampling.seed);  // the caller picks one
  EXPECT_FALSE(r.tools);
}

TEST_F(OpenAiRequest, ReasoningModeFromThinkingEffortAndTemplateKwargs) {
  const auto mode = [&](Json extra) {
    Json body = Hello();
    body.update(extra);
    return Chat(body).mode;
  };
  EXPECT_EQ(mode({{"thinking", {{"type", "disabled"}}}}), ReasoningMode::kChat);
  EXPECT_EQ(mode({{"thinking", {{"type", "enabled"}}}}), ReasoningMode::kThink);
  EXPECT_EQ(mode({{"reasoning_effort", "max"}}), ReasoningMode::kThinkMax);
  EXPECT_EQ(mode({{"reasoning_effort", "low"}}), ReasoningMode::kThink);
  EXPECT_EQ(mode({{"reasoning_effort", "max"}, {"thinking", {{"type", "disabled"}}}}), ReasoningMode::kChat);
  EXPECT_EQ(mode({{"chat_template_kwargs", {{"thinking", false}}}}), ReasoningMode::kChat);
  EXPECT_EQ(mode({{"chat_template_kwargs", {{"enable_thinking", false}}}}), ReasoningMode::kChat);
  defaults_.mode = ReasoningMode::kChat;  // --mode chat
  EXPECT_EQ(mode(Json::object()), ReasoningMode::kChat);
  EXPECT_EQ(mode({{"chat_template_kwargs", {{"thinking", true}}}}), ReasoningMode::kThink);
  EXPECT_EQ(mode({{"reasoning_effort", "ultra"}}), ReasoningMode::kThinkMax);
  const Json think_max = Hello();
  defaults_.mode = ReasoningMode::kThinkMax;
  EXPECT_EQ(Prompt(Chat(think_max)), RenderChat(think_max["messages"], ReasoningMode::kThinkMax));
}

TEST_F(OpenAiRequest, ToolsGoToTheFirstSystemMessage) {
  const Json tools = Json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Weather of a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  Json body = Hello();
  body["tools"] = tools;
  Json expected = Json::array({{{"role", "system"}, {"content", ""}, {"tools", tools}}, body["messages"][0]});
  EXPECT_EQ(Prompt(Chat(body)), RenderChat(expected, ReasoningMode::kThink));
  body["messages"] = Json::array({{{"role", "system"}, {"content", "Be brief."}}, body["messages"][0]});
  expected = body["messages"];
  expected[0]["tools"] = tools;
  const ApiRequest r = Chat(body);
  EXPECT_TRUE(r.tools);
  EXPECT_EQ(Prompt(r), RenderChat(expected, ReasoningMode::kThink));
  EXPECT_TRUE(r.generation.sampling.banned_tokens.empty());
  body["tool_choice"] = "none";  // rendered, but the DSML token is never sampled
  EXPECT_EQ(Chat(body).generation.sampling.banned_tokens,
            std::vector<int32_t>{*testing::RealTokenizer().TokenId(chat_tokens::kDsml)});
}

TEST_F(OpenAiRequest, ContentPartsAndAssistantTurnsWithToolCalls) {
  const Json body = Json::parse(R"({"messages": [
      {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
      {"role": "assistant", "content": null, "reasoning_content": "Call the tool.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]})");
  const std::string prompt = Prompt(Chat(body));
  EXPECT_NE(prompt.find("Weather in Paris?"), std::string::npos);
  EXPECT_NE(prompt.find("<｜DSML｜invoke name=\"get_weather\">"), std::string::npos);
  EXPECT_NE(prompt.find("sunny"), std::string::npos);
}

TEST_F(OpenAiRequest, SamplingFieldsOverTheDefaults) {
  Json body = Hello();
  body.update(Json::parse(R"({"temperature": 0, "top_p": 0.5, "top_k": -1, "min_p": 0.1, "seed": 42,
      "stop": "END", "presence_penalty": 1, "frequency_penalty": -1, "logit_bias": {"100": -100, "7": 5},
      "max_tokens": 10, "max_completion_tokens": 12, "reasoning_budget": 3, "logprobs": true, "top_logprobs": 2,
      "some_future_field": {"ignored": true}})"));
  const ApiRequest r = Chat(body);
  const SamplingParams& s = r.generation.sampling;
  EXPECT_EQ(s.temperature, 0);
  EXPECT_EQ(s.top_p, 0.5);
  EXPECT_EQ(s.top_k, 0);
  EXPECT_EQ(s.min_p, 0.1);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(s.presence_penalty, 1);
  EXPECT_EQ(s.frequency_penalty, -1);
  EXPECT_EQ(s.logit_bias, (std::vector<std::pair<int32_t, float>>{{100, -100.0f}, {7, 5.0f}}));
  EXPECT_EQ(s.max_tokens, 12);  // max_completion_tokens wins
  EXPECT_EQ(s.top_logprobs, 2);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.generation.reasoning_budget, 3);
}

TEST_F(OpenAiRequest, MaxTokensAndTheContext) {
  defaults_.context_tokens = 100;
  const int64_t prompt = static_cast<int64_t>(Chat(Hello()).generation.prompt.size());
  EXPECT_EQ(Chat(Hello()).generation.sampling.max_tokens, 100 - prompt);  // the default is cut to fit
  Json body = Hello();
  body["max_tokens"] = 100 - prompt;
  EXPECT_EQ(Chat(body).generation.sampling.max_tokens, 100 - prompt);
  body["max_tokens"] = 101 - prompt;
  const auto [message, param] = Refusal(body);
  EXPECT_EQ(param, "max_tokens");
  EXPECT_NE(message.find("exceeds the context of 100 tokens"), std::string::npos) << message;
  defaults_.context_tokens = prompt;
  EXPECT_EQ(Refusal(Hello()).second, "messages");
}

TEST_F(OpenAiRequest, CompletionsTakeRawTextOrTokenIds) {
  const Json text = {{"prompt", "Once upon a time"}, {"logprobs", 2}};
  const ApiRequest r = ParseRequest(Endpoint::kCompletions, text, defaults_, testing::RealTokenizer());
  EXPECT_EQ(r.generation.prompt, testing::RealTokenizer().Encode("Once upon a time"));  // no BOS: add_bos_token is false
  EXPECT_FALSE(r.generation.reasoning);
  EXPECT_EQ(r.generation.sampling.top_logprobs, 2);
  const Json ids = {{"prompt", {5, 6, 7}}};
  EXPECT_EQ(ParseRequest(Endpoint::kCompletions, ids, defaults_, testing::RealTokenizer()).generation.prompt,
            (std::vector<int32_t>{5, 6, 7}));
  const Json one = {{"prompt", {"Hi"}}};
  EXPECT_EQ(ParseRequest(Endpoint::kCompletions, one, defaults_, testing::RealTokenizer()).generation.prompt,
            testing::RealTokenizer().Encode("Hi"));
}

TEST_F(OpenAiRequest, EveryBadFieldIsARequestErrorNamingIt) {
  const auto param_of = [&](Json extra, Endpoint endpoint = Endpoint::kChatCompletions) {
    Json body = endpoint == Endpoint::kChatCompletions ? Hello() : Json{{"prompt", "x"}};
    body.update(extra);
    return Refusal(body, endpoint).second;
  };
  EXPECT_EQ(param_of({{"temperature", "hot"}}), "temperature");
  EXPECT_EQ(param_of({{"temperature", -1}}), "temperature");
  EXPECT_EQ(param_of({{"top_p", 0}}), "top_p");
  EXPECT_EQ(param_of({{"top_k", 1.5}}), "top_k");
  EXPECT_EQ(param_of({{"seed", "1"}}), "seed");
  EXPECT_EQ(param_of({{"stop", 3}}), "stop");
  EXPECT_EQ(param_of({{"stop", {"a", 1}}}), "stop");
  EXPECT_EQ(param_of({{"logit_bias", {{"x", 1}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"logit_bias", {{"5", 101}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"logit_bias", {{"99999999", 1}}}}), "logit_bias");
  EXPECT_EQ(param_of({{"max_tokens", -1}}), "max_tokens");
  EXPECT_EQ(param_of({{"n", 2}}), "n");
  EXPECT_EQ(param_of({{"messages", "Hello"}}), "messages");
  EXPECT_EQ(param_of({{"messages", Json::array()}}), "messages");
  EXPECT_EQ(param_of({{"messages", {{{"role", "robot"}, {"content", "x"}}}}}), "messages");
  EXPECT_EQ(param_of({{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}), "messages");
  EXPECT_EQ(param_of({{"tools", "x"}}), "tools");
  EXPECT_EQ(param_of({{"tool_choice", "required"}}), "tool_choice");
  EXPECT_EQ(param_of({{"tool_choice", "sometimes"}}), "tool_choice");
  EXPECT_EQ(param_of({{"thinking", {{"type", "maybe"}}}}), "thinking.type");
  EXPECT_EQ(param_of({{"thinking", true}}), "thinking");
  EXPECT_EQ(param_of({{"reasoning_effort", "extreme"}}), "reasoning_effort");
  EXPECT_EQ(param_of({{"chat_template_kwargs", {{"thinking", "yes"}}}}), "chat_template_kwargs.thinking");
  EXPECT_EQ(param_of({{"reasoning_budget", -2}}), "reasoning_budget");
  EXPECT_EQ(param_of({{"top_logprobs", 3}}), "top_logprobs");  // without logprobs
  EXPECT_EQ(param_of({{"logprobs", true}, {"top_logprobs", 21}}), "top_logprobs");
  EXPECT_EQ(param_of({{"response_format", {{"type", "json_object"}}}}), "response_format");
  EXPECT_EQ(param_of({{"prompt", Json::object()}}, Endpoint::kCompletions), "prompt");
  EXPECT_EQ(param_of({{"prompt", {1, -5}}}, Endpoint::kCompletions), "prompt");
  EXPECT_EQ(param_of({{"prompt", ""}}, Endpoint::kCompletions), "prompt");
  EXPECT_EQ(param_of({{"logprobs", 9}}, Endpoint::kCompletions), "logprobs");
  EXPECT_EQ(param_of({{"echo", true}}, Endpoint::kCompletions), "echo");
  EXPECT_EQ(Refusal(Json::array()).first, "the request body must be a JSON object");
}

TEST_F(OpenAiRequest, StructuredOutputBecomesAConstraint) {
  static ConstraintCompiler compiler(testing::RealTokenizer(), 129280);
  defaults_.constraints = &compiler;
  const Json schema = Json::parse(R"({"type":"object","properties":{"b":{"type":"integer"},"a":{"type":"string"}}})");
  Json body = Hello();
  body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "answer"}, {"schema", schema}}}};
  body["max_tokens"] = 1000;
  const ApiRequest r = Chat(body);
  ASSERT_TRUE(r.generation.constraint);
  // Rendered into a system message as received (property order kept).
  EXPECT_NE(Prompt(r).find("## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{\"type\": "
                           "\"json_schema\", \"json_schema\": {\"name\": \"answer\", \"schema\": {\"type\": \"object\", "
                           "\"properties\": {\"b\""),
            std::string::npos)
      << Prompt(r);
  EXPECT_EQ(r.generation.reasoning_budget, 500);  // thinking: half of max_tokens for the reasoning
  body["thinking"] = {{"type", "disabled"}};
  EXPECT_EQ(Chat(body).generation.reasoning_budget, -1);
  body["reasoning_budget"] = 7;
  body.erase("thinking");
  EXPECT_EQ(Chat(body).generation.reasoning_budget, 7);

  const auto refusal = [&](Json extra) {
    Json b = Hello();
    b.update(extra);
    return Refusal(b);
  };
  const Json tools = Json::parse(R"([{"type":"function","function":{"name":"f","parameters":{"type":"object",
      "properties":{"x":{"type":"string","not":{}}}}}}])");
  EXPECT_EQ(refusal({{"tool_choice", "required"}}).second, "tool_choice");
  EXPECT_EQ(refusal({{"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}).second,
            "tool_choice");
  const auto bad_tool = refusal({{"tools", tools}, {"tool_choice", "required"}});
  EXPECT_EQ(bad_tool.second, "tools");
  EXPECT_NE(bad_tool.first.find("keyword \"not\" is not supported"), std::string::npos) << bad_tool.first;
  // auto needs no constraint to run: an unsupported tool schema leaves the calls free.
  Json auto_body = Hello();
  auto_body["tools"] = tools;
  EXPECT_FALSE(Chat(auto_body).generation.constraint);
  const auto bad_schema = refusal({{"response_format", {{"type", "json_schema"},
                                                        {"json_schema", {{"name", "x"}, {"schema", {{"type", "nope"}}}}}}}});
  EXPECT_EQ(bad_schema.second, "response_format");
  EXPECT_NE(bad_schema.first.find("unknown type \"nope\""), std::string::npos) << bad_schema.first;
  EXPECT_EQ(refusal({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "a b"}}}}}}).second,
            "response_format");
  EXPECT_EQ(refusal({{"response_format", {{"type", "xml"}}}}).second, "response_format");
  EXPECT_TRUE(Chat([&] {
                Json b = Hello();
                b["response_format"] = {{"type", "json_object"}};
                return b;
              }())
                  .generation.constraint);
}

}  // namespace
}  // namespace dsv4::api
