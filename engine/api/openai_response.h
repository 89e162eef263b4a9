// A request's runtime updates turned back into OpenAI-format responses:
// `chat.completion` with DeepSeek's `reasoning_content` and DSML tool calls
// mapped to `tool_calls`, or `text_completion`; usage with cached and
// reasoning tokens; OpenAI's error object.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/api/openai_request.h"
#include "engine/runtime/generation.h"
#include "engine/text/tokenizer.h"

namespace dsv4::api {

// What identifies a response: its id (tool-call ids derive from it, so the
// same id gives the same tool-call ids), creation time and model name.
struct ResponseIds {
  std::string id;
  int64_t created = 0;
  std::string model;
};

// Collects one request's updates; once the last one is in, Body() is the
// response.
class ResponseCollector {
 public:
  ResponseCollector(const ApiRequest& request, const Tokenizer& tokenizer);

  void Add(const GenerationUpdate& update);

  Endpoint endpoint() const { return endpoint_; }
  bool finished() const { return finish_ != FinishReason::kNone; }
  FinishReason finish() const { return finish_; }
  const std::string& error() const { return error_; }  // with kError
  const Usage& usage() const { return usage_; }

  // The chat.completion or text_completion object of a finished request
  // (finish kStop or kLength).
  nlohmann::ordered_json Body(const ResponseIds& ids) const;

  // The assistant message: reasoning, answer, and the tool calls parsed from
  // a DSML block (only where the DSML token itself was generated, never from
  // the same text spelled in ordinary tokens: contracts.md §5). Tool-call ids
  // derive from `id`.
  nlohmann::ordered_json Message(const std::string& id, bool* tool_calls) const;
  // The DSML token has been generated in the answer: what follows may be a
  // tool-call block, which a stream holds back until the end.
  bool dsml_generated() const { return dsml_generated_; }
  int64_t tokens_seen() const { return tokens_seen_; }  // generated tokens so far

 private:
  nlohmann::ordered_json ChatLogprobs() const;
  nlohmann::ordered_json CompletionLogprobs() const;

  Endpoint endpoint_;
  ReasoningMode mode_;
  bool tools_;
  bool logprobs_;
  const Tokenizer& tokenizer_;
  std::optional<int32_t> dsml_token_, eos_token_, think_end_;
  bool in_reasoning_;
  std::string reasoning_, content_;
  std::vector<Sampled> answer_tokens_;  // after </think>: what logprobs report
  bool dsml_generated_ = false;
  bool ended_by_eos_ = false;
  int64_t tokens_seen_ = 0;
  FinishReason finish_ = FinishReason::kNone;
  std::string error_;
  Usage usage_;
};

// usage: prompt, completion and total tokens, prompt_tokens_details.cached_tokens,
// completion_tokens_details.reasoning_tokens.
nlohmann::ordered_json UsageObject(const Usage& usage);

// {"error": {"message", "type", "param", "code"}}; type is
// "invalid_request_error" for 4xx statuses and "server_error" otherwise.
nlohmann::ordered_json ErrorObject(int status, const std::string& message, const std::string& param = {});

}  // namespace dsv4::api
