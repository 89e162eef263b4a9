#include "engine/api/openai_response.h"

#include "engine/api/stable_hash.h"
#include "engine/text/chat_parser.h"

namespace dsv4::api {
namespace {

using Json = nlohmann::ordered_json;

Json Bytes(const std::string& text) {
  Json bytes = Json::array();
  for (const char c : text) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

}  // namespace

ResponseCollector::ResponseCollector(const ApiRequest& request, const Tokenizer& tokenizer)
    : endpoint_(request.endpoint),
      mode_(request.mode),
      tools_(request.tools),
      logprobs_(request.logprobs),
      tokenizer_(tokenizer),
      dsml_token_(tokenizer.TokenId(chat_tokens::kDsml)),
      eos_token_(tokenizer.TokenId(chat_tokens::kEos)),
      think_end_(tokenizer.TokenId(chat_tokens::kThinkEnd)),
      in_reasoning_(request.generation.reasoning) {}

void ResponseCollector::Add(const GenerationUpdate& update) {
  tokens_seen_ += static_cast<int64_t>(update.tokens.size());
  for (const Sampled& s : update.tokens) {
    if (in_reasoning_) {
      // Updates carry one token each; the one that ends the reasoning is </think>.
      if (update.reasoning_ended && s.token == think_end_) in_reasoning_ = false;
      continue;
    }
    if (s.token == dsml_token_) dsml_generated_ = true;
    if (s.token == eos_token_) {
      ended_by_eos_ = true;
      continue;
    }
    answer_tokens_.push_back(s);
  }
  if (update.reasoning_ended) in_reasoning_ = false;
  reasoning_ += update.reasoning;
  content_ += update.content;
  if (update.finish != FinishReason::kNone) {
    finish_ = update.finish;
    error_ = update.error;
    usage_ = update.usage;
  }
}

Json ResponseCollector::Message(const std::string& id, bool* tool_calls) const {
  Json message = {{"role", "assistant"}, {"content", content_}};
  message["reasoning_content"] = IsThinking(mode_) ? Json(reasoning_) : Json(nullptr);
  *tool_calls = false;
  if (tools_ && dsml_generated_) {
    const std::string eos = ended_by_eos_ ? std::string(chat_tokens::kEos) : std::string();
    ParsedCompletion parsed = ParseCompletion(content_ + eos, ReasoningMode::kChat);
    if (!parsed.tool_calls.empty()) {
      // Calls that did not parse (cut off, say) leave the text as it was.
      Json calls = Json::array();
      for (size_t i = 0; i < parsed.tool_calls.size(); ++i) {
        Json call = {{"id", "call_" + Hex64(StableHash(id, i))}};
        for (const auto& [key, value] : parsed.tool_calls[i].items()) call[key] = value;
        calls.push_back(std::move(call));
      }
      message["content"] = parsed.content.empty() ? Json(nullptr) : Json(parsed.content);
      message["tool_calls"] = std::move(calls);
      *tool_calls = true;
    }
  }
  return message;
}

Json ResponseCollector::ChatLogprobs() const {
  Json content = Json::array();
  for (const Sampled& s : answer_tokens_) {
    Json top = Json::array();
    for (const auto& [token, logprob] : s.top) {
      const std::string& text = tokenizer_.TokenBytes(token);
      top.push_back({{"token", text}, {"logprob", logprob}, {"bytes", Bytes(text)}});
    }
    const std::string& text = tokenizer_.TokenBytes(s.token);
    content.push_back({{"token", text}, {"logprob", s.logprob}, {"bytes", Bytes(text)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

Json ResponseCollector::CompletionLogprobs() const {
  Json tokens = Json::array(), logprobs = Json::array(), tops = Json::array(), offsets = Json::array();
  int64_t offset = 0;
  for (const Sampled& s : answer_tokens_) {
    const std::string& text = tokenizer_.TokenBytes(s.token);
    tokens.push_back(text);
    logprobs.push_back(s.logprob);
    Json top = Json::object();
    for (const auto& [token, logprob] : s.top) top[tokenizer_.TokenBytes(token)] = logprob;
    tops.push_back(std::move(top));
    offsets.push_back(offset);
    offset += static_cast<int64_t>(text.size());
  }
  return {{"tokens", tokens}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json ResponseCollector::Body(const ResponseIds& ids) const {
  Json choice = {{"index", 0}};
  const char* finish = FinishReasonName(finish_);
  if (endpoint_ == Endpoint::kChatCompletions) {
    bool tool_calls = false;
    choice["message"] = Message(ids.id, &tool_calls);
    choice["logprobs"] = logprobs_ ? ChatLogprobs() : Json(nullptr);
    if (tool_calls && finish_ == FinishReason::kStop) finish = "tool_calls";
  } else {
    choice["text"] = content_;
    choice["logprobs"] = logprobs_ ? CompletionLogprobs() : Json(nullptr);
  }
  choice["finish_reason"] = finish;
  return {{"id", ids.id},
          {"object", endpoint_ == Endpoint::kChatCompletions ? "chat.completion" : "text_completion"},
          {"created", ids.created},
          {"model", ids.model},
          {"choices", Json::array({choice})},
          {"usage", UsageObject(usage_)}};
}

Json UsageObject(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", usage.reasoning_tokens}}}};
}

Json ErrorObject(int status, const std::string& message, const std::string& param) {
  return {{"error",
           {{"message", message},
            {"type", status >= 400 && status < 500 ? "invalid_request_error" : "server_error"},
            {"param", param.empty() ? Json(nullptr) : Json(param)},
            {"code", nullptr}}}};
}

}  // namespace dsv4::api
