// Picks the next token from a row of logits: greedy decoding, and the
// per-request Sampler (logit bias, repetition penalties, temperature, top-k,
// top-p, min-p, logprobs).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/runtime/sampling.h"

namespace dsv4 {

// Greedy decoding: the highest logit, lowest id on ties.
int32_t ArgMax(const float* logits, int64_t vocab);

// The sampling noise: u(seed, position, token), uniform in (0, 1), from a
// counter-based hash (splitmix64's finalizer) rather than a stream, so the
// token sampled at a position depends only on the request's seed, the
// position and the logits there: never on how many tokens were drawn before
// (a resumed or speculative run samples exactly as a plain one), and the same
// with every build (no <random> distributions, no libm).
double KeyedUniform(uint64_t seed, int64_t position, int64_t token);

struct Sampled {
  int32_t token = 0;
  // Log-softmax of the raw logits (before bias, penalties and temperature);
  // 0 and empty unless top_logprobs >= 0. `top`: the top_logprobs most likely
  // tokens, most likely first, lower id first on ties.
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
};

// One request's token selection. A request's tokens depend only on its seed
// and its own logits: never on other requests or on how they are batched.
class Sampler {
 public:
  // seed: params.seed, or one the caller chose. Throws dsv4::Error where
  // ValidateSampling would.
  Sampler(const SamplingParams& params, int64_t vocab, uint64_t seed);

  // logits: one row of `vocab` model outputs. The adjusted logits are
  //   logits + logit_bias - frequency_penalty * count - presence_penalty * (count > 0)
  // with the counts of the accepted tokens (as OpenAI). Temperature 0 takes
  // their ArgMax. Otherwise they are divided by the temperature, cut to the
  // top_k, turned into probabilities (softmax), cut to the smallest set of
  // most probable tokens with mass >= top_p (lower id first on equal
  // probabilities), cut to the tokens with probability >= min_p times the
  // largest, and one token is drawn from what is left, renormalized, by
  // Gumbel-max as the reference samples (spec §4.10): the kept token with the
  // largest weight / -ln u(seed, position, token). A token
  // more than 87 below the top after the temperature has probability 0
  // (the float exponential underflows; e^-87 is 2e-38).
  //
  // allowed: when given, a bit per token (bit i of word i / 64); the tokens
  // whose bit is clear count as -infinity (constrained decoding).
  // `position`: where the token goes in the sequence (prompt included).
  Sampled Sample(const float* logits, int64_t position, const std::vector<uint64_t>* allowed = nullptr);

  // Records a generated token for the penalties: every sampled one, and any
  // the runtime forces (a forced </think>, say). Throws dsv4::Error on an id
  // outside the vocabulary.
  void Accept(int32_t token);

 private:
  // The logits with bias and penalties (in a per-thread row), or `logits`
  // itself when there are none.
  const float* Adjusted(const float* logits, const std::vector<uint64_t>* allowed) const;
  // One draw after temperature, top-k, top-p and min-p.
  int32_t Draw(const float* adjusted, int64_t position) const;
  // Fills out.logprob and out.top from the raw logits.
  void Logprobs(const float* logits, Sampled& out) const;

  SamplingParams params_;
  int64_t vocab_;
  float temperature_;  // params_.temperature as a float; 0 = greedy
  uint64_t seed_;
  std::unordered_map<int32_t, int64_t> counts_;  // accepted token -> times
};

}  // namespace dsv4
