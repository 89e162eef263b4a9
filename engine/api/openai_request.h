// OpenAI-format requests (chat completions and completions) turned into
// runtime requests, with DeepSeek-V4's conventions: `thinking`,
// `reasoning_effort` and vLLM's `chat_template_kwargs` pick the reasoning
// mode, request-level `tools` are rendered into the first system message with
// the official encoding, and what a request leaves unset takes the command's
// defaults (contracts.md §4). `dsv4 batch` and `dsv4 serve` both use this, so
// a request means the same in a file as over HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "engine/runtime/generation.h"
#include "engine/structured/output_constraint.h"
#include "engine/text/chat_format.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::api {

enum class Endpoint { kChatCompletions, kCompletions };

// "/v1/chat/completions" or "/v1/completions"; nothing for any other path.
std::optional<Endpoint> EndpointForUrl(std::string_view url);

// A request the API refuses: the HTTP status (400 for what the client got
// wrong) and the request field at fault, as OpenAI's error object reports them.
class RequestError : public Error {
 public:
  RequestError(const std::string& message, std::string param = {}, int status = 400)
      : Error(message), param_(std::move(param)), status_(status) {}
  const std::string& param() const { return param_; }
  int status() const { return status_; }

 private:
  std::string param_;
  int status_;
};

// What the command line sets for requests that do not say.
struct RequestDefaults {
  SamplingParams sampling;      // max_tokens: the default cap (batch and serve: 32768)
  ReasoningMode mode = ReasoningMode::kThink;
  int64_t reasoning_budget = -1;  // < 0: none
  int64_t context_tokens = 0;     // prompt + max_tokens must fit (the model's context)
  // Compiles response_format and tool_choice into constraints; without one,
  // requests that need constrained decoding are refused.
  ConstraintCompiler* constraints = nullptr;
};

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct ApiRequest {
  Endpoint endpoint = Endpoint::kChatCompletions;
  // The prompt and sampling, ready for the scheduler except for the seed:
  // when the request gives none, the caller picks one (batch: from the
  // custom_id; serve: at random).
  GenerationRequest generation;
  ReasoningMode mode = ReasoningMode::kChat;  // completions: always kChat (raw text, no reasoning)
  bool tools = false;                         // tools were rendered: DSML output is parsed into tool_calls
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool logprobs = false;                      // report the chosen tokens' logprobs
  bool stream = false;
  bool stream_usage = false;                  // stream_options.include_usage
};

// Parses and validates a request body, renders and tokenizes its prompt.
// response_format (json_object, json_schema) and tool_choice (required, a
// named function; auto once the model opens a block) become the request's
// constraint; in a thinking mode with response_format or a forced
// tool_choice, the reasoning budget defaults to half of max_tokens
// (contracts.md §4).
// Unknown fields are ignored; a field of the wrong type or out of range, a
// message the encoding cannot render, or a prompt plus max_tokens beyond the
// context throws RequestError naming the field.
ApiRequest ParseRequest(Endpoint endpoint, const nlohmann::ordered_json& body, const RequestDefaults& defaults,
                        const Tokenizer& tokenizer);

}  // namespace dsv4::api
