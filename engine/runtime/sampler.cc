#include "engine/runtime/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "loader/error.h"
#include "simd/ops.h"

namespace dsv4 {

// ops::TopK skips whole vectors below the best so far, some 20 times faster
// than a plain loop over the vocabulary.
int32_t ArgMax(const float* logits, int64_t vocab) { return ops::TopK(logits, vocab, 1)[0]; }

namespace {

// splitmix64's output function: a bijection of 64-bit words whose outputs
// pass BigCrush for counter inputs.
uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15u;

// One key per (seed, position); token t's number is Mix(key + t * gamma).
uint64_t NoiseKey(uint64_t seed, int64_t position) {
  return Mix(Mix(seed + kGoldenGamma) ^ (static_cast<uint64_t>(position) * kGoldenGamma));
}

// 53 bits, centred in their interval: in (0, 1), never 0 or 1.
double UniformOf(uint64_t key, int64_t token) {
  const uint64_t bits = Mix(key + static_cast<uint64_t>(token + 1) * kGoldenGamma) >> 11;
  return (static_cast<double>(bits) + 0.5) * 0x1.0p-53;
}

// -ln u for u in (0, 1), within a few ulp, from IEEE operations only (the
// token must not depend on the libm): u = m 2^e with m in [sqrt(1/2),
// sqrt(2)), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172, by its
// series to s^25 (the next term is below 1e-20).
double NegativeLog(double u) {
  int e = 0;
  double m = std::frexp(u, &e);  // u = m 2^e, m in [1/2, 1)
  if (m < 0.70710678118654752) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1), s2 = s * s;
  double series = 1.0 / 25;
  for (int k = 23; k >= 1; k -= 2) series = series * s2 + 1.0 / k;
  return -(e * 0.69314718055994531 + 2 * s * series);
}

}  // namespace

double KeyedUniform(uint64_t seed, int64_t position, int64_t token) {
  return UniformOf(NoiseKey(seed, position), token);
}

namespace {

// Vocabulary-sized working rows, one set per thread rather than per Sampler:
// the samplers of a batch reuse the warm rows of the thread that runs them,
// and a waiting request holds no such memory.
struct Scratch {
  std::vector<float> adjusted;
  std::vector<float> weights;  // softmax numerators
  std::vector<int32_t> ids;
  std::vector<int32_t> all_ids;  // 0, 1, ..., vocab - 1: the candidates when there is no top_k
  // MassCutoff's first level: the candidates of heavier leading digits than
  // the cut's, and those of its digit. Every token top-p keeps is in one.
  std::vector<int32_t> heavier, boundary;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

// exp(x) for x <= 0, within 2 ulp; 0 below -87 (under 2e-38, nothing next to
// the top token's 1) and for NaN. x = k ln2 + r with |r| <= ln2 / 2, e^r by
// its Taylor polynomial to r^7, 2^k from exponent bits. Only IEEE adds,
// multiplies and bit operations, with no branch (the range test masks the
// bits): GCC vectorizes a loop of it, which it does not for libm's expf, and
// the result does not depend on the libm.
inline float ExpNonPositive(float x) {
  constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float shifted = x * 1.44269504088896341f + kShifter;
  const float k = shifted - kShifter;
  const float r = (x - k * 0.693145751953125f) - k * 1.42860682e-6f;  // ln 2 in two parts
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // k sits in the low bits of `shifted`; unsigned, so out-of-range x wraps
  // harmlessly before the mask drops it.
  const uint32_t k_bits = std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(kShifter);
  const float two_to_k = std::bit_cast<float>((k_bits + 127u) << 23);
  const uint32_t in_range = 0u - static_cast<uint32_t>(x >= -87.0f);
  return std::bit_cast<float>(std::bit_cast<uint32_t>(p * two_to_k) & in_range);
}

// The passes over the whole vocabulary run on the team (the scheduler's
// thread samples its sequences one after another while the other cores
// would wait), in blocks of fixed size: what each computes does not depend
// on the number of threads.
constexpr int64_t kVocabBlock = 16384;
int64_t VocabBlocks(int64_t n) { return (n + kVocabBlock - 1) / kVocabBlock; }

// w[i] = exp((x[i] - max) / temperature), x[i] <= max.
void Exponentials(const float* x, int64_t n, float max, float temperature, float* w) {
  const int64_t blocks = VocabBlocks(n);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kVocabBlock);
    for (int64_t i = b * kVocabBlock; i < end; ++i) w[i] = ExpNonPositive((x[i] - max) / temperature);
  }
}

// The f64 sum of x[0, n) in one order on every machine, which the compiler
// still vectorizes: partial j takes x[i] with i = j mod kPartials below the
// last multiple of kPartials, the partials are added in order, then the rest.
constexpr int64_t kPartials = 8;
double SumInFixedOrder(const float* x, int64_t n) {
  double partial[kPartials] = {};
  int64_t i = 0;
  for (; i + kPartials <= n; i += kPartials) {
    for (int64_t j = 0; j < kPartials; ++j) partial[j] += x[i + j];
  }
  double sum = 0;
  for (const double p : partial) sum += p;
  for (; i < n; ++i) sum += x[i];
  return sum;
}

// A prefix of the tokens ranked by weight, heaviest first, lower id first
// among equal weights: those heavier than `weight`, and those of exactly
// `weight` with id <= last_id. Top-p and min-p each keep such a prefix.
struct Cutoff {
  float weight;
  int32_t last_id;
  bool Keeps(float w, int32_t id) const { return (w > weight) | ((w == weight) & (id <= last_id)); }
};

Cutoff Shorter(const Cutoff& a, const Cutoff& b) {
  if (a.weight != b.weight) return a.weight > b.weight ? a : b;
  return a.last_id < b.last_id ? a : b;
}

// Weights in [0, 1] have at most 30 significant bits, taken 10 at a time.
constexpr int kDigitBits = 10;
constexpr uint32_t kDigits = 1u << kDigitBits;
uint32_t Digit(float w, int shift) { return (std::bit_cast<uint32_t>(w) >> shift) & (kDigits - 1); }

using DigitMass = std::array<double, kDigits>;

// The weight of the tokens ids[begin, end) per digit at `shift`. Tokens take
// turns over kCopies histograms, added up in order at the end: runs of
// tokens in one bin (zero weights, say) would otherwise queue on that bin's
// memory.
DigitMass DigitMassOf(const float* w, const int32_t* ids, int64_t begin, int64_t end, int shift) {
  constexpr int64_t kCopies = 4;
  std::array<DigitMass, kCopies> copies{};
  for (int64_t j = begin; j < end; ++j) copies[j % kCopies][Digit(w[ids[j]], shift)] += w[ids[j]];
  for (int64_t c = 1; c < kCopies; ++c) {
    for (uint32_t d = 0; d < kDigits; ++d) copies[0][d] += copies[c][d];
  }
  return copies[0];
}

// One level of MassCutoff: of the tokens `ids` (which share the digits above
// `shift`), the digit at which the running sum of weights, heaviest digit
// first and starting from *above, reaches target (the lowest digit if
// rounding leaves it short). *above gains the weight of the heavier digits.
// The team sums blocks of the tokens, added up in block order.
uint32_t BoundaryDigit(const float* w, const std::vector<int32_t>& ids, int shift, double target, double* above) {
  const int64_t n = static_cast<int64_t>(ids.size()), blocks = VocabBlocks(n);
  std::vector<DigitMass> block_mass(blocks);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    block_mass[b] = DigitMassOf(w, ids.data(), b * kVocabBlock, std::min(n, (b + 1) * kVocabBlock), shift);
  }
  DigitMass mass{};
  for (int64_t b = 0; b < blocks; ++b) {
    for (uint32_t d = 0; d < kDigits; ++d) mass[d] += block_mass[b][d];
  }
  uint32_t lowest = 0;
  while (mass[lowest] == 0) ++lowest;
  uint32_t digit = kDigits - 1;
  while (digit > lowest && *above + mass[digit] < target) *above += mass[digit--];
  return digit;
}

// The shortest prefix (as Cutoff ranks) of the weights w[candidates], in
// [0, 1], some positive, whose sum reaches target (all of them if rounding
// leaves the sum short); candidates ascend. Instead of sorting, a radix
// selection: positive floats order like their bit patterns, so a histogram of
// weight per leading digit tells the digit where the running sum reaches
// target, and only the tokens of that digit go on to the next one. One pass
// over the candidates and one to list that digit's tokens (scratch.boundary)
// and the heavier ones (scratch.heavier, for the draw), then passes over the
// former (usually a handful); the tokens left at the end share one weight,
// ranked by id.
Cutoff MassCutoff(const float* w, const std::vector<int32_t>& candidates, double target, Scratch& scratch) {
  double above = 0;  // weight of the tokens ranked before every one in ids; stays below target
  int shift = 2 * kDigitBits;
  const uint32_t first = BoundaryDigit(w, candidates, shift, target, &above);
  // Listed without a branch per token, which a cut through a flat
  // distribution would mispredict half the time.
  std::vector<int32_t>& heavier = scratch.heavier;
  std::vector<int32_t>& boundary = scratch.boundary;
  heavier.resize(candidates.size());
  boundary.resize(candidates.size());
  size_t heavier_count = 0, boundary_count = 0;
  for (const int32_t id : candidates) {
    const uint32_t digit = Digit(w[id], shift);
    heavier[heavier_count] = id;
    heavier_count += digit > first;
    boundary[boundary_count] = id;
    boundary_count += (w[id] > 0) & (digit == first);
  }
  heavier.resize(heavier_count);
  boundary.resize(boundary_count);
  std::vector<int32_t>& ids = scratch.ids;
  ids = boundary;
  for (shift -= kDigitBits; shift >= 0; shift -= kDigitBits) {
    const uint32_t digit = BoundaryDigit(w, ids, shift, target, &above);
    std::erase_if(ids, [&](int32_t id) { return Digit(w[id], shift) != digit; });
  }
  for (const int32_t id : ids) {
    above += w[id];
    if (above >= target) return {w[id], id};
  }
  return {w[ids.back()], ids.back()};
}

// The least float >= min_p, so that w >= it exactly when w >= min_p.
float MinWeight(double min_p) {
  const float rounded = static_cast<float>(min_p);
  return rounded < min_p ? std::nextafter(rounded, 1.0f) : rounded;
}

struct GumbelPick {
  double score = 0;
  int32_t token = -1;
};

// Of the tokens i = ids[j] (i = j when ids is null), j in [begin, end), in
// ascending order, the one of largest w[i] / -ln u_i (the lower id on
// ties). A token can beat the best score b so far only if
// u_i > exp(-w[i] / b) >= 1 - w[i] / b, so most tokens are passed over on
// their number alone; the test keeps a margin far above rounding, so it
// never passes over a token that wins.
GumbelPick GumbelMaxIn(const float* w, const int32_t* ids, int64_t begin, int64_t end, uint64_t key) {
  GumbelPick best;
  double twice_inverse = std::numeric_limits<double>::infinity();  // 2 / best.score
  for (int64_t j = begin; j < end; ++j) {
    const int64_t i = ids ? ids[j] : j;
    if (w[i] == 0) continue;
    const double u = UniformOf(key, i);
    if (u <= 1 - w[i] * twice_inverse - 1e-9) continue;
    const double score = w[i] / NegativeLog(u);
    if (score > best.score) {
      best = {score, static_cast<int32_t>(i)};
      twice_inverse = 2 / score;
    }
  }
  return best;
}

// Of the n tokens ids (every token when null, n the vocabulary), ascending,
// token i with probability w[i] / sum(w): the largest w[i] / -ln u_i, the
// lower id on ties. Some weight must be positive.
int32_t GumbelMax(const float* w, const int32_t* ids, int64_t n, uint64_t key) {
  const int64_t blocks = VocabBlocks(n);
  std::vector<GumbelPick> picks(blocks);
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    picks[b] = GumbelMaxIn(w, ids, b * kVocabBlock, std::min(n, (b + 1) * kVocabBlock), key);
  }
  GumbelPick best;
  for (const GumbelPick& pick : picks) {
    if (pick.score > best.score) best = pick;
  }
  return best.token;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int64_t vocab, uint64_t seed)
    : params_(params), vocab_(vocab), temperature_(static_cast<float>(params.temperature)), seed_(seed) {
  ValidateSampling(params, vocab);
}

Sampled Sampler::Sample(const float* logits, int64_t position, const std::vector<uint64_t>* allowed) {
  Sampled out;
  const float* adjusted = Adjusted(logits, allowed);
  // A temperature too small for a float is greedy as well.
  out.token = temperature_ == 0 ? ArgMax(adjusted, vocab_) : Draw(adjusted, position);
  if (params_.top_logprobs >= 0) Logprobs(logits, out);
  return out;
}

void Sampler::Accept(int32_t token) {
  if (token < 0 || token >= vocab_) {
    throw Error("accepted token " + std::to_string(token) + " is outside the vocabulary [0, " +
                std::to_string(vocab_) + ")");
  }
  ++counts_[token];
}

const float* Sampler::Adjusted(const float* logits, const std::vector<uint64_t>* allowed) const {
  const bool penalize = (params_.presence_penalty != 0 || params_.frequency_penalty != 0) && !counts_.empty();
  if (params_.logit_bias.empty() && params_.banned_tokens.empty() && !penalize && !allowed) return logits;
  std::vector<float>& adjusted = ThreadScratch().adjusted;
  adjusted.assign(logits, logits + vocab_);
  if (allowed) {
    for (int64_t i = 0; i < vocab_; ++i) {
      if (!(((*allowed)[i >> 6] >> (i & 63)) & 1)) adjusted[i] = -std::numeric_limits<float>::infinity();
    }
  }
  for (const auto& [id, bias] : params_.logit_bias) adjusted[id] += bias;
  for (const int32_t id : params_.banned_tokens) adjusted[id] = -std::numeric_limits<float>::infinity();
  if (penalize) {
    for (const auto& [id, count] : counts_) {
      adjusted[id] -= static_cast<float>(params_.frequency_penalty * count + params_.presence_penalty);
    }
  }
  return adjusted.data();
}

int32_t Sampler::Draw(const float* adjusted, int64_t position) const {
  Scratch& scratch = ThreadScratch();
  std::vector<float>& w = scratch.weights;
  w.resize(vocab_);
  // Dividing by the temperature keeps the order, so top-k can come first.
  const bool top_k = params_.top_k > 0 && params_.top_k < vocab_;
  std::vector<int32_t> best = ops::TopK(adjusted, vocab_, top_k ? params_.top_k : 1);
  const float max = adjusted[best[0]];
  std::sort(best.begin(), best.end());  // MassCutoff and the draw take ascending ids
  // Softmax numerators, 0 outside the top-k. The top token weighs exactly 1,
  // so min-p compares weights with min_p itself.
  if (top_k) {
    std::fill(w.begin(), w.end(), 0.0f);
    for (const int32_t id : best) Exponentials(adjusted + id, 1, max, temperature_, w.data() + id);
  } else {
    Exponentials(adjusted, vocab_, max, temperature_, w.data());
  }
  Cutoff keep{0.0f, -1};  // every positive weight
  if (params_.top_p < 1) {
    const double target = params_.top_p * SumInFixedOrder(w.data(), vocab_);
    if (top_k) {
      keep = MassCutoff(w.data(), best, target, scratch);
    } else {
      if (scratch.all_ids.size() != static_cast<size_t>(vocab_)) {
        scratch.all_ids.resize(vocab_);
        std::iota(scratch.all_ids.begin(), scratch.all_ids.end(), 0);
      }
      keep = MassCutoff(w.data(), scratch.all_ids, target, scratch);
    }
  }
  if (params_.min_p > 0) {
    keep = Shorter(keep, Cutoff{MinWeight(params_.min_p), std::numeric_limits<int32_t>::max()});
  }
  const uint64_t key = NoiseKey(seed_, position);
  if (!top_k && keep.weight == 0) return GumbelMax(w.data(), nullptr, vocab_, key);
  // The draw passes over the kept tokens only, in ascending order: listed
  // without a branch per token, which a cut through a flat distribution
  // would mispredict half the time; after top-p, from MassCutoff's lists
  // (the heavier tokens and the cut's digit, merged), not the vocabulary.
  std::vector<int32_t>& kept = scratch.ids;
  int64_t count = 0;
  if (params_.top_p < 1) {
    const std::vector<int32_t>& heavier = scratch.heavier;
    const std::vector<int32_t>& boundary = scratch.boundary;
    kept.resize(heavier.size() + boundary.size());
    size_t h = 0, b = 0;
    while (h < heavier.size() || b < boundary.size()) {
      const bool from_heavier = b == boundary.size() || (h < heavier.size() && heavier[h] < boundary[b]);
      const int32_t id = from_heavier ? heavier[h++] : boundary[b++];
      kept[count] = id;
      count += keep.Keeps(w[id], id);
    }
  } else if (top_k) {
    kept.resize(best.size());
    for (const int32_t id : best) {
      kept[count] = id;
      count += keep.Keeps(w[id], id);
    }
  } else {
    kept.resize(vocab_);
    for (int32_t i = 0; i < vocab_; ++i) {
      kept[count] = i;
      count += keep.Keeps(w[i], i);
    }
  }
  return GumbelMax(w.data(), kept.data(), count, key);
}

void Sampler::Logprobs(const float* logits, Sampled& out) const {
  const std::vector<int32_t> top = ops::TopK(logits, vocab_, std::max(params_.top_logprobs, 1));
  const float max = logits[top[0]];
  std::vector<float>& w = ThreadScratch().weights;
  w.resize(vocab_);
  Exponentials(logits, vocab_, max, 1.0f, w.data());
  const double log_sum = std::log(SumInFixedOrder(w.data(), vocab_));
  const auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[id]) - max - log_sum);
  };
  out.logprob = logprob(out.token);
  for (size_t j = 0; j < top.size() && j < static_cast<size_t>(params_.top_logprobs); ++j) {
    out.top.emplace_back(top[j], logprob(top[j]));
  }
}

}  // namespace dsv4
