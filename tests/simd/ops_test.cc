// The row operations of simd/ops.h on every compiled target this CPU can run,
// against their scalar references: odd lengths (partial vectors), aliasing,
// ties.
#include "simd/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "simd/number_formats.h"
#include "tests/support/for_each_target.h"
#include "tests/support/random_weights.h"

namespace dsv4::ops {
namespace {

using testing::ForEachTarget;
using testing::RandomVector;

constexpr int64_t kLengths[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 64, 100, 513, 4096, 4099};

TEST(Ops, RmsNormMatchesReference) {
  ForEachTarget([] {
    for (const int64_t n : kLengths) {
      const std::vector<float> x = RandomVector(n, 3.0f, static_cast<uint32_t>(n));
      const std::vector<float> w = RandomVector(n, 1.5f, static_cast<uint32_t>(n + 1));
      for (const float* weight : {w.data(), static_cast<const float*>(nullptr)}) {
        std::vector<float> expected(n), actual(n), in_place = x;
        RmsNormReference(x.data(), weight, n, 1e-6, expected.data());
        RmsNorm(x.data(), weight, n, 1e-6, actual.data());
        RmsNorm(in_place.data(), weight, n, 1e-6, in_place.data());
        // Bit for bit: every target sums the squares in the reference's order.
        ASSERT_EQ(std::memcmp(actual.data(), expected.data(), n * sizeof(float)), 0) << "n " << n;
        ASSERT_EQ(std::memcmp(in_place.data(), expected.data(), n * sizeof(float)), 0) << "n " << n;
      }
    }
  });
}

TEST(Ops, RotatePairsMatchesReferenceBitForBit) {
  ForEachTarget([] {
    for (const int64_t pairs : {1, 2, 3, 4, 5, 8, 9, 16, 32, 33}) {
      const int64_t n = 2 * pairs;
      const std::vector<float> x = RandomVector(n, 4.0f, static_cast<uint32_t>(n));
      std::vector<double> cos_pairs(n), sin_pairs(n);
      for (int64_t i = 0; i < pairs; ++i) {
        // Angles of a million-token position: large, irregular.
        const double angle = 1e6 * std::pow(10000.0, -static_cast<double>(i) / pairs);
        cos_pairs[2 * i] = cos_pairs[2 * i + 1] = std::cos(angle);
        sin_pairs[2 * i] = -std::sin(angle);
        sin_pairs[2 * i + 1] = std::sin(angle);
      }
      std::vector<float> expected = x, actual = x;
      RotatePairsReference(expected.data(), cos_pairs.data(), sin_pairs.data(), n);
      RotatePairs(actual.data(), cos_pairs.data(), sin_pairs.data(), n);
      ASSERT_EQ(std::memcmp(actual.data(), expected.data(), n * sizeof(float)), 0) << "pairs " << pairs;
      // The rotation keeps each pair's length (to f32 rounding).
      for (int64_t i = 0; i < n; i += 2) {
        ASSERT_NEAR(std::hypot(actual[i], actual[i + 1]), std::hypot(x[i], x[i + 1]), 1e-5) << "pair " << i / 2;
      }
    }
  });
}

TEST(Ops, SoftmaxWithSinkMatchesReference) {
  ForEachTarget([] {
    for (const int64_t n : kLengths) {
      std::vector<float> scores = RandomVector(n, 8.0f, static_cast<uint32_t>(n + 3));
      if (n > 4) scores[3] = scores[1] - 200.0f;  // underflows to an exact 0
      for (const float sink : {-3.0f, 0.5f, 40.0f}) {
        std::vector<float> expected(n), actual(n), in_place = scores;
        SoftmaxWithSinkReference(scores.data(), n, sink, expected.data());
        SoftmaxWithSink(scores.data(), n, sink, actual.data());
        SoftmaxWithSink(in_place.data(), n, sink, in_place.data());
        double total = 0;
        for (int64_t i = 0; i < n; ++i) {
          // exp within 1 ulp of libm on either side, then one f64 division.
          ASSERT_NEAR(actual[i], expected[i], 5e-7f * expected[i] + 1e-30f) << "n " << n << " i " << i;
          ASSERT_EQ(in_place[i], actual[i]);
          total += actual[i];
        }
        EXPECT_LT(total, 1.0 + 1e-6);
      }
    }
  });
}

TEST(Ops, HadamardIsBitIdenticalToTheScalarTransform) {
  ForEachTarget([] {
    for (int64_t n = 1; n <= 2048; n *= 2) {
      std::vector<float> expected = RandomVector(n, 4.0f, static_cast<uint32_t>(n + 5));
      std::vector<float> actual = expected;
      HadamardTransform(expected.data(), n);
      Hadamard(actual.data(), n);
      ASSERT_EQ(std::memcmp(actual.data(), expected.data(), n * sizeof(float)), 0) << "n " << n;
    }
  });
}

// Head counts with and without partial groups of eight (AVX-512) and four,
// row lengths with and without a tail after the last whole vector, weights
// of every scale.
TEST(Ops, WeightedRowSumsAreBitIdenticalToReference) {
  ForEachTarget([] {
    for (const int64_t heads : {1, 3, 4, 8, 9, 13}) {
      for (const int64_t d : {1, 7, 16, 33, 512}) {
        for (const int64_t n : {0, 1, 5, 40}) {
          std::mt19937 rng(static_cast<uint32_t>(heads * 1000 + d * 10 + n));
          std::normal_distribution<float> normal;
          std::vector<float> values(n * d);
          for (float& v : values) v = normal(rng);
          std::vector<const float*> rows;
          for (int64_t e = 0; e < n; ++e) rows.push_back(values.data() + e * d);
          const int64_t stride = n + 2;
          std::vector<double> p(heads * stride), expected(heads * d), actual(heads * d);
          const double scales[] = {0.0, 1.0, 0.3, -2.5e-3, 7.0e5};
          for (int64_t k = 0; k < heads * stride; ++k) p[k] = normal(rng) * scales[k % 5];
          for (int64_t k = 0; k < heads * d; ++k) expected[k] = actual[k] = normal(rng);
          WeightedRowSumsReference(p.data(), stride, heads, rows.data(), n, d, expected.data());
          WeightedRowSums(p.data(), stride, heads, rows.data(), n, d, actual.data());
          ASSERT_EQ(std::memcmp(actual.data(), expected.data(), heads * d * sizeof(double)), 0)
              << "heads " << heads << " d " << d << " n " << n;
        }
      }
    }
  });
}

TEST(Ops, TopKMatchesReferenceWithTies) {
  ForEachTarget([] {
    for (const int64_t n : {0, 1, 5, 100, 1000, 5000, 70000}) {
      std::mt19937 rng(static_cast<uint32_t>(n));
      std::vector<float> values(n);
      for (float& v : values) v = static_cast<float>(static_cast<int>(rng() % 64) - 32) * 0.25f;  // many ties
      for (const int64_t k : {0, 1, 7, 64, 512, 6000}) {
        EXPECT_EQ(TopK(values.data(), n, k), TopKReference(values.data(), n, k)) << "n " << n << " k " << k;
      }
    }
  });
}

}  // namespace
}  // namespace dsv4::ops
