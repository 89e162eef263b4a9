#include "engine/runtime/sampling.h"

#include <charconv>
#include <cmath>
#include <unordered_set>

#include "loader/error.h"

namespace dsv4 {
namespace {

// Shortest round-trip form, so a rejected value reads as the client sent it.
template <typename T>
std::string Number(T value) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

void RequireFinite(const std::string& field, double value) {
  if (!std::isfinite(value)) throw Error(field + " must be a finite number (got " + Number(value) + ")");
}

// lo < value <= hi if lo_open, else lo <= value <= hi.
void RequireInRange(const std::string& field, double value, double lo, double hi, bool lo_open = false) {
  RequireFinite(field, value);
  if ((lo_open ? value > lo : value >= lo) && value <= hi) return;
  throw Error(field + " must be in " + (lo_open ? "(" : "[") + Number(lo) + ", " + Number(hi) + "] (got " +
              Number(value) + ")");
}

void RequireToken(const std::string& field, int32_t id, int64_t vocab) {
  if (id < 0 || id >= vocab) {
    throw Error(field + " token " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab) +
                ")");
  }
}

}  // namespace

void ValidateSampling(const SamplingParams& params, int64_t vocab) {
  RequireFinite("temperature", params.temperature);
  if (params.temperature < 0) throw Error("temperature must be >= 0 (got " + Number(params.temperature) + ")");
  if (params.top_k < 0) throw Error("top_k must be >= 0 (got " + std::to_string(params.top_k) + ")");
  RequireInRange("top_p", params.top_p, 0, 1, /*lo_open=*/true);
  RequireInRange("min_p", params.min_p, 0, 1);
  RequireInRange("presence_penalty", params.presence_penalty, -2, 2);
  RequireInRange("frequency_penalty", params.frequency_penalty, -2, 2);
  std::unordered_set<int32_t> biased;
  for (const auto& [id, bias] : params.logit_bias) {
    RequireToken("logit_bias", id, vocab);
    RequireInRange("logit_bias for token " + std::to_string(id), bias, -100, 100);
    if (!biased.insert(id).second) throw Error("logit_bias lists token " + std::to_string(id) + " twice");
  }
  if (params.stop.size() > kMaxStopStrings) {
    throw Error("stop must have at most " + std::to_string(kMaxStopStrings) + " strings (got " +
                std::to_string(params.stop.size()) + ")");
  }
  for (const std::string& stop : params.stop) {
    if (stop.empty()) throw Error("stop strings must not be empty");
  }
  for (const int32_t id : params.stop_token_ids) RequireToken("stop_token_ids", id, vocab);
  for (const int32_t id : params.banned_tokens) RequireToken("banned_tokens", id, vocab);
  if (params.top_logprobs > kMaxTopLogprobs) {
    throw Error("top_logprobs must be at most " + std::to_string(kMaxTopLogprobs) + " (got " +
                std::to_string(params.top_logprobs) + ")");
  }
}

}  // namespace dsv4
