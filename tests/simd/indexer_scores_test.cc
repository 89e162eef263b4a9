// IndexerScores on every compiled target this CPU can run, bit for bit
// against its scalar reference (random codes, scales from moderate to the
// whole E8M0 range, zero rows, negative weights, per-query visible prefixes,
// one and two threads), and the reference against an f64 computation.
#include "simd/indexer_scores.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "simd/number_formats.h"
#include "tests/support/for_each_target.h"

namespace dsv4 {
namespace {

using testing::ForEachTarget;

// Owns FP4 rows with random codes and scale exponents in [min_exp, max_exp]
// (E8M0 codes 127 + exponent); every zero_every-th row is all zero codes.
struct RandomFp4 {
  std::vector<uint8_t> codes, scales;
  Fp4Rows rows;

  RandomFp4(int64_t n, int64_t dim, int min_exp, int max_exp, int64_t zero_every, std::mt19937& rng)
      : codes(n * dim / 2), scales(n * dim / 32) {
    std::uniform_int_distribution<int> byte(0, 255), exponent(min_exp, max_exp);
    for (uint8_t& c : codes) c = static_cast<uint8_t>(byte(rng));
    for (uint8_t& s : scales) s = static_cast<uint8_t>(127 + exponent(rng));
    if (zero_every > 0) {
      for (int64_t r = 0; r < n; r += zero_every) std::fill_n(codes.begin() + r * dim / 2, dim / 2, 0);
    }
    rows = Fp4Rows{codes.data(), scales.data(), n, dim};
  }
};

struct Problem {
  RandomFp4 queries, keys;
  std::vector<float> weights;
  std::vector<int64_t> visible;
  int64_t count, heads;

  Problem(int64_t count, int64_t heads, int64_t rows, int64_t dim, int min_exp, int max_exp, uint32_t seed)
      : Problem(count, heads, rows, dim, min_exp, max_exp, std::mt19937(seed)) {}
  Problem(int64_t count, int64_t heads, int64_t rows, int64_t dim, int min_exp, int max_exp, std::mt19937 rng)
      : queries(count * heads, dim, min_exp, max_exp, 7, rng),
        keys(rows, dim, min_exp, max_exp, 5, rng),
        weights(count * heads),
        visible(count),
        count(count),
        heads(heads) {
    std::uniform_real_distribution<float> weight(-1.0f, 2.0f);
    for (float& w : weights) w = weight(rng);
    std::uniform_int_distribution<int64_t> prefix(0, rows);
    for (int64_t& v : visible) v = prefix(rng);
    visible[0] = rows;  // one query sees every row
  }

  IndexerQueries Queries() const { return IndexerQueries{queries.rows, count, heads, weights.data()}; }
};

constexpr float kUntouched = -12345.0f;  // where no score may be written
constexpr int64_t kStridePad = 3;        // score rows longer than the key rows

std::vector<float> Scores(const Problem& p, bool reference) {
  const int64_t stride = p.keys.rows.rows + kStridePad;
  std::vector<float> scores(p.count * stride, kUntouched);
  (reference ? IndexerScoresReference : IndexerScores)(p.Queries(), p.keys.rows, p.visible.data(), scores.data(),
                                                        stride);
  return scores;
}

// Bit equality, NaN included; names the first differing score.
void ExpectSameBits(const std::vector<float>& actual, const std::vector<float>& expected, int64_t stride) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_EQ(F32ToBits(actual[i]), F32ToBits(expected[i]))
        << "query " << i / stride << " row " << i % stride << ": " << actual[i] << " vs " << expected[i];
  }
}

void CheckAllShapes(int min_exp, int max_exp) {
  uint32_t seed = 1;
  for (const int64_t dim : {32, 64, 128}) {
    for (const int64_t heads : {1, 3, 16, 64}) {
      for (const int64_t count : {1, 5, 17}) {
        for (const int64_t rows : {0, 1, 7, 33, 300}) {
          SCOPED_TRACE(::testing::Message() << "dim " << dim << " heads " << heads << " count " << count << " rows "
                                          << rows);
          const Problem p(count, heads, rows, dim, min_exp, max_exp, seed++);
          const std::vector<float> expected = Scores(p, true);
          for (int64_t q = 0; q < count; ++q) {  // the reference honours visible
            for (int64_t j = p.visible[q]; j < rows + kStridePad; ++j) {
              ASSERT_EQ(expected[q * (rows + kStridePad) + j], kUntouched);
            }
          }
          ForEachTarget([&] { ExpectSameBits(Scores(p, false), expected, rows + kStridePad); });
        }
      }
    }
  }
}

TEST(IndexerScores, BitIdenticalToReferenceWithExtremeScales) { CheckAllShapes(-20, 20); }

// Codes 0 .. 254: block products that overflow to infinity and underflow to
// subnormals or zero, infinite dots, NaN sums of opposite infinities.
TEST(IndexerScores, BitIdenticalToReferenceOverTheWholeScaleRange) { CheckAllShapes(-127, 127); }

TEST(IndexerScores, OneAndTwoThreadsAgree) {
  const Problem p(3, 16, 20000, 128, -20, 20, 99);
  const int threads = omp_get_max_threads();
  ForEachTarget([&] {
    omp_set_num_threads(1);
    const std::vector<float> one = Scores(p, false);
    omp_set_num_threads(2);
    const std::vector<float> two = Scores(p, false);
    ExpectSameBits(two, one, p.keys.rows.rows + kStridePad);
  });
  omp_set_num_threads(threads);
}

// The reference against f64 sums of the decoded values (Fp4Decode): every
// block product is exact, then each f32 addition and weighting rounds once,
// so the error is at most (blocks + 2 * heads) half-ulps of the magnitude.
TEST(IndexerScores, ReferenceMatchesF64Computation) {
  for (const int64_t dim : {32, 128}) {
    const int64_t count = 4, heads = 8, rows = 50, blocks = dim / 32;
    const Problem p(count, heads, rows, dim, -6, 6, static_cast<uint32_t>(dim));
    const std::vector<float> scores = Scores(p, true);
    std::vector<float> query(dim), key(dim);
    for (int64_t q = 0; q < count; ++q) {
      for (int64_t j = 0; j < p.visible[q]; ++j) {
        Fp4Decode(p.keys.codes.data() + j * dim / 2, p.keys.scales.data() + j * blocks, dim, 32, key.data());
        double exact = 0, magnitude = 0;
        for (int64_t h = 0; h < heads; ++h) {
          const int64_t row = q * heads + h;
          Fp4Decode(p.queries.codes.data() + row * dim / 2, p.queries.scales.data() + row * blocks, dim, 32,
                    query.data());
          double dot = 0, dot_magnitude = 0;
          for (int64_t i = 0; i < dim; ++i) {
            dot += static_cast<double>(query[i]) * key[i];
            dot_magnitude += std::fabs(static_cast<double>(query[i]) * key[i]);
          }
          exact += p.weights[row] * std::max(dot, 0.0);
          magnitude += std::fabs(p.weights[row]) * dot_magnitude;
        }
        const double bound = static_cast<double>(blocks + 2 * heads) * std::ldexp(magnitude, -24);
        ASSERT_NEAR(scores[q * (rows + kStridePad) + j], exact, bound) << "dim " << dim << " q " << q << " j " << j;
      }
    }
  }
}

TEST(IndexerScores, RejectsInconsistentShapes) {
  const Problem p(2, 3, 10, 64, 0, 0, 5);
  std::vector<float> scores(2 * 10);
  IndexerQueries queries = p.Queries();
  queries.heads_per_query = 2;
  EXPECT_THROW(IndexerScores(queries, p.keys.rows, p.visible.data(), scores.data(), 10), std::invalid_argument);
  const int64_t too_far[2] = {11, 0};
  EXPECT_THROW(IndexerScores(p.Queries(), p.keys.rows, too_far, scores.data(), 10), std::invalid_argument);
  Fp4Rows keys = p.keys.rows;
  keys.dim = 48;
  EXPECT_THROW(IndexerScoresReference(p.Queries(), keys, p.visible.data(), scores.data(), 10), std::invalid_argument);
}

}  // namespace
}  // namespace dsv4
