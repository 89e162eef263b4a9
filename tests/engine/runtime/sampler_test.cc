#include "engine/runtime/sampler.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "engine/runtime/sampling.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

// ValidateSampling's message for `params`, "" if they pass.
std::string ValidationError(const SamplingParams& params, int64_t vocab = 4096) {
  try {
    ValidateSampling(params, vocab);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ValidateSampling, AcceptsDefaultsAndTheEdgesOfEveryRange) {
  EXPECT_EQ(ValidationError({}), "");
  SamplingParams edges;
  edges.temperature = 0;
  edges.top_k = 1;
  edges.top_p = 1;
  edges.min_p = 1;
  edges.presence_penalty = -2;
  edges.frequency_penalty = 2;
  edges.logit_bias = {{0, -100.0f}, {4095, 100.0f}};
  edges.stop = std::vector<std::string>(kMaxStopStrings, "x");
  edges.stop_token_ids = {0, 4095};
  edges.max_tokens = 0;
  edges.top_logprobs = kMaxTopLogprobs;
  EXPECT_EQ(ValidationError(edges), "");
}

TEST(ValidateSampling, NamesTheFieldOfEveryInvalidValue) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const auto with = [](auto change) {
    SamplingParams params;
    change(params);
    return ValidationError(params);
  };
  EXPECT_EQ(with([](SamplingParams& p) { p.temperature = -1; }), "temperature must be >= 0 (got -1)");
  EXPECT_EQ(with([&](SamplingParams& p) { p.temperature = nan; }), "temperature must be a finite number (got nan)");
  EXPECT_EQ(with([&](SamplingParams& p) { p.temperature = inf; }), "temperature must be a finite number (got inf)");
  EXPECT_EQ(with([](SamplingParams& p) { p.top_k = -1; }), "top_k must be >= 0 (got -1)");
  EXPECT_EQ(with([](SamplingParams& p) { p.top_p = 0; }), "top_p must be in (0, 1] (got 0)");
  EXPECT_EQ(with([](SamplingParams& p) { p.top_p = 1.5; }), "top_p must be in (0, 1] (got 1.5)");
  EXPECT_EQ(with([&](SamplingParams& p) { p.top_p = nan; }), "top_p must be a finite number (got nan)");
  EXPECT_EQ(with([](SamplingParams& p) { p.min_p = -0.25; }), "min_p must be in [0, 1] (got -0.25)");
  EXPECT_EQ(with([](SamplingParams& p) { p.min_p = 2; }), "min_p must be in [0, 1] (got 2)");
  EXPECT_EQ(with([](SamplingParams& p) { p.presence_penalty = 2.5; }),
            "presence_penalty must be in [-2, 2] (got 2.5)");
  EXPECT_EQ(with([&](SamplingParams& p) { p.presence_penalty = -inf; }),
            "presence_penalty must be a finite number (got -inf)");
  EXPECT_EQ(with([](SamplingParams& p) { p.frequency_penalty = -3; }),
            "frequency_penalty must be in [-2, 2] (got -3)");
  EXPECT_EQ(with([&](SamplingParams& p) { p.frequency_penalty = nan; }),
            "frequency_penalty must be a finite number (got nan)");
  EXPECT_EQ(with([](SamplingParams& p) { p.logit_bias = {{999999, 1.0f}}; }),
            "logit_bias token 999999 is outside the vocabulary [0, 4096)");
  EXPECT_EQ(with([](SamplingParams& p) { p.logit_bias = {{-1, 1.0f}}; }),
            "logit_bias token -1 is outside the vocabulary [0, 4096)");
  EXPECT_EQ(with([](SamplingParams& p) { p.logit_bias = {{5, 200.0f}}; }),
            "logit_bias for token 5 must be in [-100, 100] (got 200)");
  EXPECT_EQ(with([](SamplingParams& p) { p.logit_bias = {{5, std::numeric_limits<float>::infinity()}}; }),
            "logit_bias for token 5 must be a finite number (got inf)");
  EXPECT_EQ(with([](SamplingParams& p) { p.logit_bias = {{5, 1.0f}, {6, 1.0f}, {5, -1.0f}}; }),
            "logit_bias lists token 5 twice");
  EXPECT_EQ(with([](SamplingParams& p) { p.stop = {"ok", ""}; }), "stop strings must not be empty");
  EXPECT_EQ(with([](SamplingParams& p) { p.stop = std::vector<std::string>(17, "x"); }),
            "stop must have at most 16 strings (got 17)");
  EXPECT_EQ(with([](SamplingParams& p) { p.stop_token_ids = {1, 4096}; }),
            "stop_token_ids token 4096 is outside the vocabulary [0, 4096)");
  EXPECT_EQ(with([](SamplingParams& p) { p.top_logprobs = 21; }), "top_logprobs must be at most 20 (got 21)");
}

TEST(Sampler, ConstructorValidates) {
  SamplingParams params;
  params.top_p = 0;
  EXPECT_THROW(Sampler(params, 16, 1), Error);
  Sampler sampler({}, 16, 1);
  EXPECT_THROW(sampler.Accept(16), Error);
  EXPECT_THROW(sampler.Accept(-1), Error);
}

TEST(KeyedUniform, IsPinnedUniformAndIndependentOfItsKeys) {
  // Pinned: a seed must give the same tokens with every build and version.
  EXPECT_EQ(KeyedUniform(42, 0, 0), 0x1.8b4afd02e5e16p-1);
  EXPECT_EQ(KeyedUniform(42, 7, 3), 0x1.af8234f2f545p-1);
  // Uniform in (0, 1) along each key, and the neighbours of a number along
  // each key are uncorrelated with it.
  for (int axis = 0; axis < 3; ++axis) {
    double sum = 0, product = 0, previous = 0.5;
    for (int i = 0; i < 100000; ++i) {
      const double u = KeyedUniform(axis == 0 ? i : 7, axis == 1 ? i : 5, axis == 2 ? i : 11);
      ASSERT_GT(u, 0.0);
      ASSERT_LT(u, 1.0);
      sum += u;
      product += (u - 0.5) * (previous - 0.5);
      previous = u;
    }
    EXPECT_NEAR(sum / 100000, 0.5, 0.005) << "axis " << axis;
    EXPECT_NEAR(product / 100000, 0.0, 0.002) << "axis " << axis;
  }
}

// Logits uniform in [lo, hi).
std::vector<float> RandomLogits(int64_t vocab, uint64_t seed, float lo = -5.0f, float hi = 5.0f) {
  std::vector<float> logits(vocab);
  for (int64_t i = 0; i < vocab; ++i) logits[i] = lo + (hi - lo) * static_cast<float>(KeyedUniform(seed, -1, i));
  return logits;
}

// softmax(logits / temperature) in f64.
std::vector<double> Softmax(const std::vector<float>& logits, double temperature = 1.0) {
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = std::exp((logits[i] - max) / temperature);
  const double sum = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= sum;
  return p;
}

// How often each token comes out of `draws` samples (not accepted).
std::vector<int> Counts(Sampler& sampler, const std::vector<float>& logits, int draws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) ++counts[sampler.Sample(logits.data(), i).token];
  return counts;
}

// Pearson's chi-square of counts against probabilities; a token of
// probability 0 must never come out.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs) {
  const double draws = std::accumulate(counts.begin(), counts.end(), 0.0);
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " has probability 0";
      continue;
    }
    const double expected = draws * probs[i];
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// probs restricted to `kept` tokens, renormalized.
std::vector<double> Restricted(std::vector<double> probs, const std::set<int>& kept) {
  double sum = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (!kept.count(static_cast<int>(i))) probs[i] = 0;
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;
  return probs;
}

// Chi-square bound for these tests: 8 tokens (7 degrees of freedom) have a
// 1e-6 chance of exceeding 40 when the distribution is right.
constexpr double kChiSquareBound = 40;

TEST(Sampler, GreedyIsArgMaxOfTheAdjustedLogits) {
  const std::vector<float> logits = RandomLogits(1000, 3);
  SamplingParams params;
  params.temperature = 0;
  Sampler sampler(params, 1000, 1);
  EXPECT_EQ(sampler.Sample(logits.data(), 0).token, ArgMax(logits.data(), 1000));
  const std::vector<float> tied = {1.0f, 3.0f, 2.0f, 3.0f};
  EXPECT_EQ(Sampler(params, 4, 1).Sample(tied.data(), 0).token, 1);
  params.logit_bias = {{2, 1.5f}};
  EXPECT_EQ(Sampler(params, 4, 1).Sample(tied.data(), 0).token, 2);
}

TEST(Sampler, BannedTokensAreNeverChosen) {
  // Token 1 dominates; banned, it is never drawn, greedy or not.
  const std::vector<float> logits = {0.0f, 30.0f, 1.0f, 0.5f};
  SamplingParams params;
  params.banned_tokens = {1};
  params.top_logprobs = 1;
  Sampler drawing(params, 4, 1);
  params.temperature = 0;
  EXPECT_EQ(Sampler(params, 4, 1).Sample(logits.data(), 0).token, 2);
  for (int i = 0; i < 200; ++i) {
    const Sampled s = drawing.Sample(logits.data(), i);
    ASSERT_NE(s.token, 1);
    ASSERT_EQ(s.top[0].first, 1);  // the logprobs are the model's own
  }
  params.banned_tokens = {4};
  EXPECT_NE(ValidationError(params, 4).find("banned_tokens token 4"), std::string::npos);
}

TEST(Sampler, DrawsFollowTheSoftmaxAtEachTemperature) {
  const std::vector<float> logits = {0.5f, 1.0f, -1.0f, 2.0f, 0.0f, 1.5f, -0.5f, 1.0f};
  for (const double temperature : {1.0, 0.5, 2.0}) {
    SamplingParams params;
    params.temperature = temperature;
    Sampler sampler(params, 8, 11);
    EXPECT_LT(ChiSquare(Counts(sampler, logits, 40000), Softmax(logits, temperature)), kChiSquareBound)
        << "temperature " << temperature;
  }
}

TEST(Sampler, DrawsFollowTheSoftmaxAcrossAWideVocabulary) {
  // 8 groups of 500 tokens, each group's logits around its own level.
  const int64_t vocab = 4000;
  std::vector<float> logits = RandomLogits(vocab, 13, -1.0f, 1.0f);
  for (int64_t i = 0; i < vocab; ++i) logits[i] += 0.3f * static_cast<float>((i / 500 * 5) % 8);
  Sampler sampler({}, vocab, 21);
  const std::vector<int> counts = Counts(sampler, logits, 40000);
  const std::vector<double> probs = Softmax(logits);
  std::vector<int> group_counts(8);
  std::vector<double> group_probs(8);
  for (int64_t i = 0; i < vocab; ++i) {
    group_counts[i / 500] += counts[i];
    group_probs[i / 500] += probs[i];
  }
  EXPECT_LT(ChiSquare(group_counts, group_probs), kChiSquareBound);
}

TEST(Sampler, SameSeedSameTokensOtherSeedOthers) {
  const std::vector<float> logits = RandomLogits(5000, 4, 0.0f, 3.0f);
  const auto tokens = [&](uint64_t seed) {
    Sampler sampler({}, 5000, seed);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      out.push_back(sampler.Sample(logits.data(), i).token);
      sampler.Accept(out.back());
    }
    return out;
  };
  EXPECT_EQ(tokens(9), tokens(9));
  EXPECT_NE(tokens(9), tokens(10));
}

TEST(Sampler, TheTokenAtAPositionDependsOnlyOnTheSeedThePositionAndTheLogits) {
  // Two equally likely tokens left: Gumbel-max takes token 1 exactly when
  // its number at that position is the larger.
  const std::vector<float> logits = {0.0f, 0.0f, -3.0f, -1.0f};
  SamplingParams params;
  params.top_k = 2;
  params.top_p = 0.9;
  params.min_p = 0.5;
  Sampler sampler(params, 4, 77);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(sampler.Sample(logits.data(), i).token, KeyedUniform(77, i, 1) > KeyedUniform(77, i, 0) ? 1 : 0)
        << "position " << i;
  }
  // Whatever was sampled before, and in any order: a resumed or speculative
  // run samples each position as a plain one does.
  const std::vector<float> wide = RandomLogits(5000, 4, 0.0f, 3.0f);
  Sampler in_order({}, 5000, 9);
  std::vector<int32_t> forward;
  for (int i = 0; i < 100; ++i) forward.push_back(in_order.Sample(wide.data(), i).token);
  for (int i = 99; i >= 0; --i) ASSERT_EQ(Sampler({}, 5000, 9).Sample(wide.data(), i).token, forward[i]);
}

TEST(Sampler, AFullVocabularyDrawIsTheLargestGumbelScoreWhateverTheThreads) {
  // The draw over DeepSeek's vocabulary runs in blocks on the team; it must
  // equal the plain definition, the kept token of largest p_i / -ln u_i, at
  // any thread count. Flat logits leave every token in play; peaked ones let
  // the draw pass over nearly all; min-p and top-k cut the candidates.
  const int64_t vocab = 129280;
  const int team = omp_get_max_threads();
  for (const float spread : {1.0f, 20.0f}) {
    const std::vector<float> logits = RandomLogits(vocab, 6, -spread, spread);
    const std::vector<double> probs = Softmax(logits);
    const double top = *std::max_element(probs.begin(), probs.end());
    std::vector<double> sorted = probs;
    std::nth_element(sorted.begin(), sorted.begin() + 49, sorted.end(), std::greater<>());
    for (const int cut : {0, 1, 2, 3}) {  // none, min-p 0.5, top-k 50, top-p 0.5 (the team sums its masses)
      SamplingParams params;
      if (cut == 1) params.min_p = 0.5;
      if (cut == 2) params.top_k = 50;
      if (cut == 3) params.top_p = 0.5;
      const auto kept = [&](int64_t i) {
        return cut == 0 || (cut == 1 && probs[i] >= 0.5 * top) || (cut == 2 && probs[i] >= sorted[49]);
      };
      for (int position = 0; position < 8; ++position) {
        int32_t expected = -1;
        double best = 0;
        for (int64_t i = 0; i < vocab; ++i) {
          const double score = probs[i] / -std::log(KeyedUniform(3, position, i));
          if (kept(i) && score > best) {
            best = score;
            expected = static_cast<int32_t>(i);
          }
        }
        if (cut == 3) {  // TopPOverTheWholeVocabularyMatchesASortedReference checks the set itself
          omp_set_num_threads(1);
          expected = Sampler(params, vocab, 3).Sample(logits.data(), position).token;
        }
        for (const int threads : {1, 3}) {
          omp_set_num_threads(threads);
          EXPECT_EQ(Sampler(params, vocab, 3).Sample(logits.data(), position).token, expected)
              << "spread " << spread << ", cut " << cut << ", position " << position << ", threads " << threads;
        }
      }
    }
  }
  omp_set_num_threads(team);
}

TEST(Sampler, RequestsStayInLockstepWhateverTheirLogitsOrNeighbours) {
  const std::vector<float> logits = RandomLogits(64, 5, -2.0f, 2.0f);
  const std::vector<float> other = RandomLogits(64, 6, -8.0f, 8.0f);
  Sampler alone({}, 64, 123);
  Sampler detoured({}, 64, 123);  // same seed, other logits for a while
  Sampler neighbour({}, 64, 456);
  for (int i = 0; i < 300; ++i) {
    const int32_t expected = alone.Sample(logits.data(), i).token;
    neighbour.Sample(other.data(), i);  // interleaved: must not disturb the others
    const int32_t got = detoured.Sample(i < 20 ? other.data() : logits.data(), i).token;
    if (i >= 20) {
      ASSERT_EQ(got, expected) << "token " << i;
    }
  }
}

TEST(Sampler, TopKOneIsGreedyAndTopKKeepsTheBest) {
  const std::vector<float> logits = RandomLogits(3000, 8);
  SamplingParams params;
  params.temperature = 5;
  params.top_k = 1;
  Sampler greedy(params, 3000, 2);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(greedy.Sample(logits.data(), i).token, ArgMax(logits.data(), 3000));

  const std::vector<float> eight = {0.5f, 1.0f, -1.0f, 2.0f, 0.0f, 1.5f, -0.5f, 1.0f};
  params.temperature = 1;
  params.top_k = 4;  // tokens 3, 5, then 1 and 7 tie at 1.0
  Sampler sampler(params, 8, 3);
  EXPECT_LT(ChiSquare(Counts(sampler, eight, 40000), Restricted(Softmax(eight), {1, 3, 5, 7})), kChiSquareBound);
  params.top_k = 3;  // of the tie, the lower id
  Sampler three(params, 8, 3);
  EXPECT_LT(ChiSquare(Counts(three, eight, 40000), Restricted(Softmax(eight), {1, 3, 5})), kChiSquareBound);
}

TEST(Sampler, TopPKeepsTheSmallestMostProbableSet) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 in a shuffled order.
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  SamplingParams params;
  params.top_p = 1e-9;
  Sampler tiny(params, 4, 5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(tiny.Sample(logits.data(), i).token, 1);
  params.top_p = 0.75;
  Sampler two(params, 4, 5);
  EXPECT_LT(ChiSquare(Counts(two, logits, 20000), Restricted(Softmax(logits), {1, 3})), kChiSquareBound);
  params.top_p = 0.85;
  Sampler three(params, 4, 5);
  EXPECT_LT(ChiSquare(Counts(three, logits, 20000), Restricted(Softmax(logits), {0, 1, 3})), kChiSquareBound);
  // Equal probabilities: lower ids first.
  const std::vector<float> flat(8, 1.0f);
  params.top_p = 0.3;  // 3 of 8 reach 0.375
  Sampler ties(params, 8, 5);
  EXPECT_LT(ChiSquare(Counts(ties, flat, 20000), Restricted(Softmax(flat), {0, 1, 2})), kChiSquareBound);
  params.top_p = 0.25;  // reached exactly by 2 of 8
  Sampler exact(params, 8, 5);
  EXPECT_LT(ChiSquare(Counts(exact, flat, 20000), Restricted(Softmax(flat), {0, 1})), kChiSquareBound);
}

TEST(Sampler, TopPOverTheWholeVocabularyMatchesASortedReference) {
  const int64_t vocab = 129280;
  const std::vector<float> logits = RandomLogits(vocab, 12, -4.0f, 12.0f);
  for (const double top_p : {0.95, 0.5, 0.01}) {
    const std::vector<double> probs = Softmax(logits);
    std::vector<int> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); });
    // A hair more than top_p: the sampler's f32 weights may round one more
    // token in at the edge.
    std::set<int> nucleus;
    double mass = 0;
    for (size_t i = 0; mass < top_p + 1e-5; ++i) {
      nucleus.insert(order[i]);
      mass += probs[order[i]];
    }
    SamplingParams params;
    params.top_p = top_p;
    Sampler sampler(params, vocab, 99);
    std::set<int> seen;
    for (int i = 0; i < 2000; ++i) {
      const int32_t token = sampler.Sample(logits.data(), i).token;
      ASSERT_TRUE(nucleus.count(token)) << "token " << token << " is outside the top_p " << top_p << " set";
      seen.insert(token);
    }
    // Drawn across the set, not just from its head.
    EXPECT_GT(seen.size(), std::min<size_t>(nucleus.size(), 2000) / 3) << "top_p " << top_p;
  }
}

TEST(Sampler, MinPDropsTokensFarBelowTheTop) {
  const std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  SamplingParams params;
  params.min_p = 0.2;  // keeps probability >= 0.1
  Sampler sampler(params, 4, 6);
  EXPECT_LT(ChiSquare(Counts(sampler, logits, 20000), Restricted(Softmax(logits), {0, 1, 3})), kChiSquareBound);
  params.min_p = 0.5;  // >= 0.25
  Sampler strict(params, 4, 6);
  EXPECT_LT(ChiSquare(Counts(strict, logits, 20000), Restricted(Softmax(logits), {1, 3})), kChiSquareBound);
  params.min_p = 1;  // the top token only
  Sampler top(params, 4, 6);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(top.Sample(logits.data(), i).token, 1);
}

TEST(Sampler, PenaltiesFollowOpenAI) {
  const std::vector<float> logits = {1.0f, 0.0f, 0.5f};
  SamplingParams params;
  params.temperature = 0;
  params.frequency_penalty = 0.2;  // token 0 after 3 uses: 1 - 0.6 = 0.4 < 0.5
  Sampler frequency(params, 3, 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(frequency.Sample(logits.data(), 0).token, 0);
    frequency.Accept(0);
  }
  EXPECT_EQ(frequency.Sample(logits.data(), 0).token, 2);

  params.frequency_penalty = 0;
  params.presence_penalty = 0.2;  // 1 - 0.2 = 0.8 however often
  Sampler presence(params, 3, 1);
  for (int i = 0; i < 10; ++i) presence.Accept(0);
  EXPECT_EQ(presence.Sample(logits.data(), 0).token, 0);
  params.presence_penalty = 0.6;  // 0.4 < 0.5
  Sampler stronger(params, 3, 1);
  stronger.Accept(0);
  EXPECT_EQ(stronger.Sample(logits.data(), 0).token, 2);

  params.presence_penalty = -1;  // negative values encourage repeats
  Sampler repeat(params, 3, 1);
  repeat.Accept(1);
  EXPECT_EQ(repeat.Sample(logits.data(), 0).token, 0);  // 0 + 1 = 1, a tie: lower id
  params.frequency_penalty = -0.5;
  Sampler both(params, 3, 1);
  both.Accept(1);
  both.Accept(1);
  EXPECT_EQ(both.Sample(logits.data(), 0).token, 1);  // 0 + 2 * 0.5 + 1 = 2
}

TEST(Sampler, LogitBiasBansAndForces) {
  const std::vector<float> flat(16, 0.0f);
  SamplingParams params;
  params.logit_bias = {{3, -100.0f}};
  Sampler banned(params, 16, 8);
  const std::vector<int> counts = Counts(banned, flat, 5000);
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[4], 0);
  params.temperature = 2;
  params.logit_bias = {{5, 100.0f}};
  Sampler forced(params, 16, 8);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(forced.Sample(flat.data(), i).token, 5);
}

TEST(Sampler, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.5f, 3.0f};
  double sum = 0;
  for (const float l : logits) sum += std::exp(static_cast<double>(l));
  const auto expected = [&](int id) { return logits[id] - std::log(sum); };

  SamplingParams params;
  params.temperature = 0.3;
  params.logit_bias = {{0, 50.0f}};  // forces token 0; its logprob stays the raw one
  params.top_logprobs = 3;
  Sampler sampler(params, 5, 1);
  const Sampled sampled = sampler.Sample(logits.data(), 0);
  EXPECT_EQ(sampled.token, 0);
  EXPECT_NEAR(sampled.logprob, expected(0), 1e-5);
  ASSERT_EQ(sampled.top.size(), 3u);
  const int order[] = {2, 4, 1};  // 3.0 twice: lower id first
  for (int j = 0; j < 3; ++j) {
    EXPECT_EQ(sampled.top[j].first, order[j]);
    EXPECT_NEAR(sampled.top[j].second, expected(order[j]), 1e-5);
  }

  params.top_logprobs = 0;
  const Sampled only = Sampler(params, 5, 1).Sample(logits.data(), 0);
  EXPECT_NEAR(only.logprob, expected(0), 1e-5);
  EXPECT_TRUE(only.top.empty());
  params.top_logprobs = 20;  // more than the vocabulary: all of it
  EXPECT_EQ(Sampler(params, 5, 1).Sample(logits.data(), 0).top.size(), 5u);
  params.top_logprobs = -1;
  const Sampled none = Sampler(params, 5, 1).Sample(logits.data(), 0);
  EXPECT_EQ(none.logprob, 0.0f);
  EXPECT_TRUE(none.top.empty());
}

TEST(Sampler, FarBelowTheTopWeighsNothing) {
  // exp underflows below -87: such tokens are never drawn, even with
  // every other cut off, and logprobs of -1000 stay finite.
  std::vector<float> logits(300, -1000.0f);
  logits[7] = 0.0f;
  SamplingParams params;
  params.temperature = 1;
  params.top_logprobs = 2;
  Sampler sampler(params, 300, 4);
  for (int i = 0; i < 50; ++i) {
    const Sampled sampled = sampler.Sample(logits.data(), i);
    EXPECT_EQ(sampled.token, 7);
    EXPECT_NEAR(sampled.top[1].second, -1000.0f, 1e-3);
  }
}

}  // namespace
}  // namespace dsv4
