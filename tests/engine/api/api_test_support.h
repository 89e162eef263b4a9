// What the scheduler would send for a given output, for the tests of the
// OpenAI response and stream builders: one update per token, with the
// token's text beside it, the real tokenizer's special tokens where the
// runtime emits them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/api/openai_request.h"
#include "engine/runtime/generation.h"
#include "tests/support/test_support.h"

namespace dsv4::api::testing {

inline int32_t SpecialId(std::string_view special) { return *dsv4::testing::RealTokenizer().TokenId(special); }

// `text` as reasoning or answer updates (logprob -0.5, itself as the top alternative).
inline std::vector<GenerationUpdate> TextUpdates(const std::string& text, bool reasoning) {
  std::vector<GenerationUpdate> updates;
  const Tokenizer& tokenizer = dsv4::testing::RealTokenizer();
  for (const int32_t token : tokenizer.Encode(text)) {
    GenerationUpdate u;
    u.tokens.push_back({token, -0.5f, {{token, -0.5f}}});
    (reasoning ? u.reasoning : u.content) = tokenizer.Decode(std::vector<int32_t>{token});
    updates.push_back(std::move(u));
  }
  return updates;
}

// The update of the </think> token that ends the reasoning.
inline GenerationUpdate ReasoningEnd() {
  GenerationUpdate u;
  u.tokens.push_back({SpecialId(chat_tokens::kThinkEnd), -0.1f, {}});
  u.reasoning_ended = true;
  return u;
}

// The last update: the end-of-sentence token if `eos`, the finish and a usage.
inline GenerationUpdate Last(FinishReason reason, bool eos) {
  GenerationUpdate u;
  if (eos) u.tokens.push_back({SpecialId(chat_tokens::kEos), -0.2f, {}});
  u.finish = reason;
  u.usage = {20, 9, 4, 16};
  return u;
}

inline ApiRequest Request(ReasoningMode mode, bool tools, bool logprobs = false,
                          Endpoint endpoint = Endpoint::kChatCompletions) {
  ApiRequest r;
  r.endpoint = endpoint;
  r.mode = mode;
  r.generation.reasoning = IsThinking(mode);
  r.tools = tools;
  r.logprobs = logprobs;
  return r;
}

// The DSML block of one call of get_weather(city="Paris", days=3).
inline const std::string kToolBlock =
    "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" "
    "string=\"true\">Paris</｜DSML｜parameter>\n<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n</｜DSML｜tool_calls>";

}  // namespace dsv4::api::testing
