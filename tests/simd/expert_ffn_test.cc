// The fused expert feed-forward on every compiled target: bit for bit the
// same as its three MatMulSimd products around the activation and as the
// reference, at every batch size, alone and in groups on any team; the
// activation's clamps.
#include "simd/expert_ffn.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <stdexcept>
#include <vector>

#include "simd/matmul.h"
#include "tests/support/for_each_target.h"
#include "tests/support/random_weights.h"

namespace dsv4 {
namespace {

using testing::Draw;
using testing::ForEachTarget;
using testing::MakeMatrix;
using testing::OwnedMatrix;
using testing::RandomVector;

struct Expert {
  OwnedMatrix w1, w3, w2;
};

// FP4 (routed experts: per-32 scales) or FP8 (shared expert: 128x128 tiles).
Expert MakeExpert(WeightFormat format, int64_t hidden, int64_t inner, uint32_t seed) {
  const int64_t block_rows = format == WeightFormat::kE4M3Blocked ? 128 : 1;
  const int64_t block_cols = format == WeightFormat::kE4M3Blocked ? 128 : 32;
  // Scales near 2^-4 keep the products of the two layers in a sane range.
  Draw draw;
  draw.scale_lo = 121;
  draw.scale_hi = 124;
  return {MakeMatrix(format, inner, hidden, block_rows, block_cols, draw, seed),
          MakeMatrix(format, inner, hidden, block_rows, block_cols, draw, seed + 1),
          MakeMatrix(format, hidden, inner, block_rows, block_cols, draw, seed + 2)};
}

// The same expert as three separate MatMulSimd calls.
std::vector<float> Unfused(const Expert& e, const std::vector<float>& x, int64_t batch,
                           const std::vector<float>& route_weights, float limit) {
  const int64_t inner = e.w1.w.rows;
  std::vector<float> gate(batch * inner), up(batch * inner), y(batch * e.w2.w.rows);
  MatMulSimd(e.w1.w, x.data(), batch, gate.data());
  MatMulSimd(e.w3.w, x.data(), batch, up.data());
  for (int64_t i = 0; i < batch * inner; ++i) {
    gate[i] = SwiGluActivation(gate[i], up[i], limit, route_weights[i / inner]);
  }
  MatMulSimd(e.w2.w, gate.data(), batch, y.data());
  return y;
}

// Empty vectors (an expert of no rows) may hold null data, which memcmp must not see.
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

TEST(ExpertFfn, FusedEqualsItsMatMulsBitForBit) {
  struct Case {
    WeightFormat format;
    int64_t hidden, inner;
  };
  // Inner sizes that split unevenly over threads and register tiles.
  const Case cases[] = {{WeightFormat::kE2M1Grouped, 256, 96},
                        {WeightFormat::kE2M1Grouped, 192, 300},
                        {WeightFormat::kE4M3Blocked, 256, 160},
                        {WeightFormat::kE4M3Blocked, 200, 130}};
  for (const Case& c : cases) {
    const Expert e = MakeExpert(c.format, c.hidden, c.inner, static_cast<uint32_t>(c.hidden + c.inner));
    for (const int64_t batch : {1, 2, 4, 5, 7, 13}) {
      const std::vector<float> x = RandomVector(batch * c.hidden, 2.0f, static_cast<uint32_t>(batch));
      const std::vector<float> route_weights = RandomVector(batch, 1.0f, static_cast<uint32_t>(batch + 99));
      for (const float limit : {0.0f, 0.75f}) {
        std::vector<float> reference(batch * c.hidden);
        ExpertFfnReference(e.w1.w, e.w3.w, e.w2.w, x.data(), batch, route_weights.data(), limit, reference.data());
        double magnitude = 0;
        for (const float v : reference) magnitude += std::fabs(v);
        ASSERT_TRUE(std::isfinite(magnitude) && magnitude > 0) << "degenerate test data";
        ForEachTarget([&] {
          std::vector<float> fused(batch * c.hidden, std::nanf(""));
          ExpertFfnSimd(e.w1.w, e.w3.w, e.w2.w, x.data(), batch, route_weights.data(), limit, fused.data());
          EXPECT_TRUE(SameBits(fused, Unfused(e, x, batch, route_weights, limit)))
              << "hidden " << c.hidden << " inner " << c.inner << " batch " << batch << " limit " << limit;
          EXPECT_TRUE(SameBits(fused, reference)) << "hidden " << c.hidden << " batch " << batch;
        });
      }
    }
  }
}

TEST(ExpertFfn, AGroupEqualsItsExpertsAloneBitForBitOnAnyTeam) {
  struct Member {
    WeightFormat format;
    int64_t hidden, inner, batch;
  };
  // Routed FP4 experts of a few rows (one with none), an FP8 shared expert
  // of more, and shapes whose rows split unevenly into 16-row pieces.
  const Member group[] = {{WeightFormat::kE2M1Grouped, 256, 96, 1},
                          {WeightFormat::kE2M1Grouped, 256, 96, 3},
                          {WeightFormat::kE2M1Grouped, 192, 300, 0},
                          {WeightFormat::kE2M1Grouped, 192, 300, 2},
                          {WeightFormat::kE4M3Blocked, 200, 130, 13}};
  std::vector<Expert> experts;
  std::vector<std::vector<float>> x, route_weights, reference;
  for (size_t i = 0; i < std::size(group); ++i) {
    const Member& g = group[i];
    experts.push_back(MakeExpert(g.format, g.hidden, g.inner, static_cast<uint32_t>(7 * i + 3)));
    x.push_back(RandomVector(g.batch * g.hidden, 2.0f, static_cast<uint32_t>(i + 40)));
    route_weights.push_back(RandomVector(g.batch, 1.0f, static_cast<uint32_t>(i + 60)));
    reference.emplace_back(g.batch * g.hidden);
    ExpertFfnReference(experts[i].w1.w, experts[i].w3.w, experts[i].w2.w, x[i].data(), g.batch,
                       route_weights[i].data(), 0.75f, reference[i].data());
  }
  const int threads_before = omp_get_max_threads();
  for (const int threads : {1, 2, 3, 7}) {
    omp_set_num_threads(threads);
    ForEachTarget([&] {
      std::vector<std::vector<float>> y;
      std::vector<ExpertFfnJob> jobs;
      for (size_t i = 0; i < std::size(group); ++i) y.emplace_back(group[i].batch * group[i].hidden, std::nanf(""));
      for (size_t i = 0; i < std::size(group); ++i) {
        jobs.push_back({&experts[i].w1.w, &experts[i].w3.w, &experts[i].w2.w, x[i].data(), group[i].batch,
                        route_weights[i].data(), y[i].data()});
      }
      ExpertFfnGroup(jobs, 0.75f);
      for (size_t i = 0; i < std::size(group); ++i) {
        EXPECT_TRUE(SameBits(y[i], reference[i])) << "expert " << i << ", " << threads << " threads";
      }
    });
  }
  omp_set_num_threads(threads_before);
}

TEST(ExpertFfn, ActivationClampsTheGateFromAboveAndTheUpProjectionBothWays) {
  EXPECT_EQ(SwiGluActivation(10.0f, 2.0f, 0.0f, 1.0f), 10.0f / (1.0f + std::exp(-10.0f)) * 2.0f);
  EXPECT_EQ(SwiGluActivation(10.0f, 2.0f, 7.0f, 1.0f), 7.0f / (1.0f + std::exp(-7.0f)) * 2.0f);
  EXPECT_EQ(SwiGluActivation(-10.0f, 2.0f, 7.0f, 1.0f), -10.0f / (1.0f + std::exp(10.0f)) * 2.0f);
  EXPECT_EQ(SwiGluActivation(1.0f, -9.0f, 7.0f, 0.5f), 1.0f / (1.0f + std::exp(-1.0f)) * -7.0f * 0.5f);
  EXPECT_EQ(SwiGluActivation(1.0f, 9.0f, 7.0f, 0.5f), 1.0f / (1.0f + std::exp(-1.0f)) * 7.0f * 0.5f);
}

TEST(ExpertFfn, RejectsMismatchedMatrices) {
  const Expert e = MakeExpert(WeightFormat::kE2M1Grouped, 64, 32, 1);
  const Expert other = MakeExpert(WeightFormat::kE2M1Grouped, 64, 64, 2);
  std::vector<float> x(64), y(64);
  const float weight = 1.0f;
  EXPECT_THROW(ExpertFfnSimd(e.w1.w, other.w3.w, e.w2.w, x.data(), 1, &weight, 0.0f, y.data()),
               std::invalid_argument);
  EXPECT_THROW(ExpertFfnSimd(e.w1.w, e.w3.w, other.w2.w, x.data(), 1, &weight, 0.0f, y.data()),
               std::invalid_argument);
  EXPECT_THROW(ExpertFfnReference(e.w1.w, other.w3.w, e.w2.w, x.data(), 1, &weight, 0.0f, y.data()),
               std::invalid_argument);
}

}  // namespace
}  // namespace dsv4
