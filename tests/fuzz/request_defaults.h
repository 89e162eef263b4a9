// What `dsv4 batch` and `dsv4 serve` give ParseRequest, for the request and
// batch harnesses: the real tokenizer, a constraint compiler over it (so
// response_format and tool_choice compile their schemas), DeepSeek-V4-Flash's
// context and the commands' default caps.
#pragma once

#include "engine/api/openai_request.h"
#include "engine/structured/output_constraint.h"
#include "tests/fuzz/real_tokenizer.h"

namespace dsv4::fuzz {

inline const api::RequestDefaults& RequestDefaultsForFuzz() {
  static ConstraintCompiler compiler(RealTokenizer(), RealTokenizer().VocabSize());
  static const api::RequestDefaults defaults = [] {
    api::RequestDefaults d;
    d.sampling.max_tokens = 32768;
    d.mode = ReasoningMode::kThink;
    d.context_tokens = 1048576;
    d.constraints = &compiler;
    return d;
  }();
  return defaults;
}

// ParseRequest's contract: anything wrong with the body is a RequestError;
// a request it accepts is ready for the scheduler.
inline void ParseRequestChecked(api::Endpoint endpoint, const nlohmann::ordered_json& body) {
  const Tokenizer& tokenizer = RealTokenizer();
  const api::RequestDefaults& defaults = RequestDefaultsForFuzz();
  Expect<api::RequestError>("api::ParseRequest", [&] {
    const api::ApiRequest r = api::ParseRequest(endpoint, body, defaults, tokenizer);
    const GenerationRequest& g = r.generation;
    Check(!g.prompt.empty(), "an accepted request has a prompt");
    for (const int32_t id : g.prompt) Check(tokenizer.HasToken(id), "prompt ids are tokens");
    Check(g.sampling.max_tokens >= 0 &&
              static_cast<int64_t>(g.prompt.size()) + g.sampling.max_tokens <= defaults.context_tokens,
          "prompt + max_tokens fits the context");
    Check(r.endpoint == endpoint, "the endpoint is kept");
    Check(endpoint == api::Endpoint::kChatCompletions || r.mode == ReasoningMode::kChat,
          "completions do not reason");
  });
}

}  // namespace dsv4::fuzz
