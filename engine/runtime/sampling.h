// What a request asks of token selection and of when to stop, and the limits
// the API accepts (OpenAI's where it has them). The defaults leave the model's
// distribution as it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace dsv4 {

inline constexpr size_t kMaxStopStrings = 16;
inline constexpr int kMaxTopLogprobs = 20;

struct SamplingParams {
  double temperature = 1.0;        // 0 = greedy (argmax after bias/penalties)
  int64_t top_k = 0;               // 0 = off
  double top_p = 1.0;              // (0, 1]
  double min_p = 0.0;              // [0, 1]
  std::optional<uint64_t> seed;    // unset: the caller fills one in (Sampler requires a seed value)
  double presence_penalty = 0.0;   // [-2, 2], as OpenAI
  double frequency_penalty = 0.0;  // [-2, 2]
  std::vector<std::pair<int32_t, float>> logit_bias;  // id -> bias in [-100, 100]
  std::vector<std::string> stop;   // stop strings, non-empty each, at most kMaxStopStrings
  std::vector<int32_t> stop_token_ids;
  // Never sampled: their logits count as -infinity (tool_choice "none" bans
  // the DSML token). The logprobs still report the model's own values.
  std::vector<int32_t> banned_tokens;
  int64_t max_tokens = -1;         // < 0: the command's default; 0 allowed
  // < 0: no logprobs; 0..kMaxTopLogprobs: the chosen token's logprob plus
  // that many alternatives.
  int top_logprobs = -1;
};

// Throws dsv4::Error naming the field at fault (NaN and infinities included)
// for any value outside the ranges above, a token id outside [0, vocab) in
// logit_bias or stop_token_ids, or a token listed twice in logit_bias.
void ValidateSampling(const SamplingParams& params, int64_t vocab);

}  // namespace dsv4
