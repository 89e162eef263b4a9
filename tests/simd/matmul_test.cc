// MatMul on every compiled target this CPU can run, against MatMulReference,
// bit for bit at every batch size: odd shapes (partial vectors, partial scale
// blocks, partial row groups, register tiles and panels), every weight
// format, edge codes, extreme E8M0 scales, and rows computed alone or inside
// batches, with several thread counts.
#include "simd/matmul.h"
#include "simd/roofline.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "simd/number_formats.h"
#include "tests/support/random_weights.h"

namespace dsv4 {
namespace {

using testing::Draw;
using testing::MakeMatrix;
using testing::OwnedMatrix;

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

std::vector<float> MakeInput(int64_t batch, int64_t cols, float magnitude, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-magnitude, magnitude);
  std::vector<float> x(batch * cols);
  for (auto& v : x) v = rng() % 16 == 0 ? 0.0f : uniform(rng);
  return x;
}

class MatMulTest : public ::testing::Test {
 protected:
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }

  // MatMul on every target vs the reference, bit for bit at every batch
  // size: the same bits down to the sign of a zero.
  void ExpectMatchesReference(const WeightMatrix& w, const std::vector<float>& x, int64_t batch) {
    const int64_t rows = w.rows;
    std::vector<float> expected(batch * rows), actual(batch * rows);
    MatMulReference(w, x.data(), batch, expected.data());
    for (int64_t i = 0; i < batch * rows; ++i) ASSERT_TRUE(std::isfinite(expected[i])) << "test data overflowed at " << i;
    const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
    ASSERT_FALSE(targets.empty());
    for (const int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      std::fill(actual.begin(), actual.end(), std::nanf(""));
      MatMulSimd(w, x.data(), batch, actual.data());
      int64_t mismatches = 0;
      for (int64_t i = 0; i < batch * rows; ++i) {
        if (!SameBits(actual[i], expected[i]) && mismatches++ == 0) {
          ADD_FAILURE() << hwy::TargetName(target) << " " << KernelFormatName(w.format) << " " << rows << "x" << w.cols
                        << " blocks " << w.block_rows << "x" << w.block_cols << " batch " << batch << ": y[" << i / rows
                        << "][" << i % rows << "] = " << actual[i] << ", reference " << expected[i];
        }
      }
      EXPECT_EQ(mismatches, 0) << hwy::TargetName(target) << " " << KernelFormatName(w.format);
    }
    hwy::SetSupportedTargetsForTest(0);
  }

  void CheckShape(WeightFormat format, int64_t rows, int64_t cols, int64_t batch, int64_t block_rows,
                  int64_t block_cols, const Draw& draw = Draw(), float x_magnitude = 1.0f) {
    const uint32_t seed = static_cast<uint32_t>(rows * 7919 + cols * 104729 + batch * 31 + block_cols);
    const OwnedMatrix m = MakeMatrix(format, rows, cols, block_rows, block_cols, draw, seed);
    ExpectMatchesReference(m.w, MakeInput(batch, cols, x_magnitude, seed + 1), batch);
  }
};

struct Shape {
  int64_t rows, cols;
};
// Rows and columns that are not multiples of the vector width, the matvec's
// row groups and passes, the GEMM's register tile and 128-row panel, the
// 128-column scale block or the 512-column panel, plus whole ones.
constexpr Shape kShapes[] = {{1, 2},    {1, 64},   {2, 6},     {3, 34},   {5, 96},  {16, 160},
                             {33, 200}, {64, 256}, {70, 514},  {129, 1000}, {300, 1090}};
constexpr int64_t kBatches[] = {1, 2, 3, 4, 5, 13};

TEST_F(MatMulTest, AllFormatsOddShapes) {
  for (const WeightFormat format : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kE4M3Blocked,
                                    WeightFormat::kE2M1Grouped}) {
    const int64_t block_rows = format == WeightFormat::kE4M3Blocked ? 128 : 1;
    const int64_t block_cols = format == WeightFormat::kE4M3Blocked ? 128 : 32;
    for (const Shape& shape : kShapes) {
      for (const int64_t batch : kBatches) {
        CheckShape(format, shape.rows, shape.cols, batch, block_rows, block_cols);
      }
    }
  }
}

TEST_F(MatMulTest, LargeBatchCoversEveryRegisterTileRemainder) {
  for (const WeightFormat format : {WeightFormat::kF32, WeightFormat::kBF16, WeightFormat::kE4M3Blocked,
                                    WeightFormat::kE2M1Grouped}) {
    const int64_t block_rows = format == WeightFormat::kE4M3Blocked ? 128 : 1;
    const int64_t block_cols = format == WeightFormat::kE4M3Blocked ? 128 : 32;
    CheckShape(format, 133, 610, 130, block_rows, block_cols);
    for (int64_t batch = 8; batch <= 12; ++batch) CheckShape(format, 21, 96, batch, block_rows, block_cols);
  }
}

TEST_F(MatMulTest, UnusualScaleBlocksTakeTheExactPath) {
  for (const int64_t batch : {1, 5}) {
    CheckShape(WeightFormat::kE4M3Blocked, 150, 200, batch, 64, 48);  // 48: whole AVX2 steps, not AVX-512 ones
    CheckShape(WeightFormat::kE4M3Blocked, 37, 61, batch, 7, 5);
    CheckShape(WeightFormat::kE4M3Blocked, 20, 300, batch, 1, 256);
    CheckShape(WeightFormat::kE2M1Grouped, 45, 96, batch, 1, 16);
    CheckShape(WeightFormat::kE2M1Grouped, 45, 200, batch, 1, 64);
  }
}

// Row slices (the grouped wo_a projection) that start inside a 128-row
// scale block and cross into the next one.
TEST_F(MatMulTest, RowSlicesStartingInsideAScaleBlock) {
  const OwnedMatrix m = MakeMatrix(WeightFormat::kE4M3Blocked, 300, 256, 128, 128, Draw(), 5);
  const int64_t slices[][2] = {{64, 128}, {100, 200}, {130, 40}, {0, 300}};
  for (const auto& [first, count] : slices) {
    const WeightMatrix slice = SliceRows(m.w, first, count);
    for (const int64_t batch : {1, 2, 5, 13}) {
      ExpectMatchesReference(slice, MakeInput(batch, 256, 1.0f, static_cast<uint32_t>(first + batch)), batch);
    }
  }
}

// The engine's contract: a row's output bits depend only on its own inputs,
// not on how many rows share the call, where the row sits in the batch, or
// how many threads split the output rows (and so where the row ranges and
// the kernels' row groups start). Each row alone (batch 1) against the same
// row inside batches of 2..17 (matvec and GEMM), with 1, 2 and 3 threads.
TEST_F(MatMulTest, RowOutputDoesNotDependOnTheBatchOrTheThreads) {
  constexpr int64_t kRows = 520, kCols = 1090, kPool = 20;  // 520 x 1090: worth 3 threads at batch 1
  const int saved_threads = omp_get_max_threads();
  for (const WeightFormat format : {WeightFormat::kE4M3Blocked, WeightFormat::kE2M1Grouped}) {
    const int64_t block_rows = format == WeightFormat::kE4M3Blocked ? 128 : 1;
    const int64_t block_cols = format == WeightFormat::kE4M3Blocked ? 128 : 32;
    const OwnedMatrix m = MakeMatrix(format, kRows, kCols, block_rows, block_cols, Draw(), 77);
    const std::vector<float> pool = MakeInput(kPool, kCols, 1.0f, 78);
    std::vector<float> alone(kPool * kRows);
    MatMulReference(m.w, pool.data(), kPool, alone.data());
    for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
      hwy::SetSupportedTargetsForTest(target);
      for (const int threads : {1, 2, 3}) {
        omp_set_num_threads(threads);
        std::vector<float> y(kPool * kRows);
        for (int64_t row = 0; row < kPool; ++row) {
          MatMulSimd(m.w, pool.data() + row * kCols, 1, y.data());
          ASSERT_EQ(std::memcmp(y.data(), alone.data() + row * kRows, kRows * sizeof(float)), 0)
              << hwy::TargetName(target) << " " << KernelFormatName(format) << " row " << row << " alone, "
              << threads << " threads";
        }
        for (int64_t batch = 2; batch <= 17; ++batch) {
          for (const int64_t first : {int64_t{0}, kPool - batch, (kPool - batch) / 2}) {
            MatMulSimd(m.w, pool.data() + first * kCols, batch, y.data());
            for (int64_t i = 0; i < batch; ++i) {
              ASSERT_EQ(std::memcmp(y.data() + i * kRows, alone.data() + (first + i) * kRows, kRows * sizeof(float)), 0)
                  << hwy::TargetName(target) << " " << KernelFormatName(format) << " row " << first + i
                  << " at position " << i << " of a batch of " << batch << ", " << threads << " threads";
            }
          }
        }
      }
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  omp_set_num_threads(saved_threads);
}

TEST_F(MatMulTest, TinyE8M0Scales) {
  Draw draw;
  draw.scale_lo = 0;  // 2^-127 .. 2^-120: products near and below the f32 normal range
  draw.scale_hi = 7;
  for (const int64_t batch : {1, 3, 7}) {  // 7: the GEMM, its E4M3 panel in f32, its E2M1 one in bf16
    CheckShape(WeightFormat::kE4M3Blocked, 40, 300, batch, 128, 128, draw);
    CheckShape(WeightFormat::kE2M1Grouped, 40, 300, batch, 1, 32, draw);
  }
}

// The GEMM keeps E4M3 weights in a bf16 panel from a smallest tile scale of
// 2^-117 on (E8M0 code 10), where every product is normal; below, in f32.
TEST_F(MatMulTest, E4M3GemmPanelAtTheBf16Threshold) {
  for (const int code : {8, 9, 10, 11}) {
    Draw draw;
    draw.scale_lo = code;
    draw.scale_hi = code + 4;
    CheckShape(WeightFormat::kE4M3Blocked, 300, 260, 9, 128, 128, draw);
  }
}

TEST_F(MatMulTest, HugeE8M0Scales) {
  Draw draw;
  draw.scale_lo = 250;  // up to 2^127 on weights below 2: finite weights
  draw.scale_hi = 254;
  draw.small_codes = true;
  const float x_magnitude = std::ldexp(1.0f, -40);  // and finite sums
  for (const int64_t batch : {1, 3, 7}) {
    CheckShape(WeightFormat::kE4M3Blocked, 40, 300, batch, 128, 128, draw, x_magnitude);
    CheckShape(WeightFormat::kE2M1Grouped, 40, 300, batch, 1, 32, draw, x_magnitude);
  }
}

// The E4M3 matvec multiplies the inputs by the tile scale, not the weights,
// where every input times every scale stays normal: the same bits as the
// reference both there and where one input would leave the normal range (the
// weights take the scales), at every matvec batch size. Tiny scales (2^-127
// .. 2^-120) against inputs in [1, 2), whose products with the weights are
// subnormal, and in 2^-10 x [1, 2), which times the scales are subnormal
// themselves; huge scales (2^113 ..
// 2^119) against inputs near 2^-100, with and without an input of 256 (times
// the scale and the decode's 2^8: past the f32 range).
TEST_F(MatMulTest, E4M3InputsTakeTheScaleOnlyWhereExact) {
  const auto inputs = [](int64_t batch, float unit, float outlier) {
    std::mt19937 rng(static_cast<uint32_t>(batch * 131));
    std::uniform_real_distribution<float> magnitude(1.0f, 2.0f);
    std::vector<float> x(batch * 384);
    for (auto& v : x) v = (rng() % 2 == 0 ? magnitude(rng) : -magnitude(rng)) * unit;
    if (outlier != 0.0f) x[x.size() / 2] = outlier;
    return x;
  };
  Draw tiny;
  tiny.scale_lo = 0;
  tiny.scale_hi = 7;
  Draw huge;
  huge.scale_lo = 240;
  huge.scale_hi = 246;
  huge.small_codes = true;
  const OwnedMatrix small = MakeMatrix(WeightFormat::kE4M3Blocked, 300, 384, 128, 128, tiny, 11);
  const OwnedMatrix large = MakeMatrix(WeightFormat::kE4M3Blocked, 300, 384, 128, 128, huge, 12);
  const float huge_unit = std::ldexp(1.0f, -100);
  for (const int64_t batch : {1, 2, 3, 4}) {
    for (const float tiny_unit : {1.0f, std::ldexp(1.0f, -10)}) {
      ExpectMatchesReference(small.w, inputs(batch, tiny_unit, 0.0f), batch);
    }
    for (const float outlier : {0.0f, 256.0f}) ExpectMatchesReference(large.w, inputs(batch, huge_unit, outlier), batch);
  }
}

TEST_F(MatMulTest, EveryE4M3CodeDecodesExactly) {
  // One row per code pair, identity-like inputs: y is the decoded code itself.
  OwnedMatrix m;
  m.w.format = WeightFormat::kE4M3Blocked;
  m.w.rows = 256;
  m.w.cols = 32;
  m.w.block_rows = 128;
  m.w.block_cols = 128;
  m.data.assign(256 * 32, 0);
  for (int code = 0; code < 256; ++code) m.data[code * 32 + code % 32] = (code & 0x7F) == 0x7F ? 0 : code;
  m.scales = {127, 128};  // rows 128..255 are scaled by 2
  m.w.data = m.data.data();
  m.w.scales = m.scales.data();
  std::vector<float> x(32 * 32, 0.0f);
  for (int i = 0; i < 32; ++i) x[i * 32 + i] = 1.0f;
  ExpectMatchesReference(m.w, x, 32);
  std::vector<float> x1(32, 1.0f);
  ExpectMatchesReference(m.w, x1, 1);
}

TEST_F(MatMulTest, ZeroSizes) {
  const OwnedMatrix m = MakeMatrix(WeightFormat::kE2M1Grouped, 4, 0, 1, 32, Draw(), 1);
  std::vector<float> y(8, 1.0f);
  MatMulSimd(m.w, nullptr, 2, y.data());
  for (const float v : y) EXPECT_EQ(v, 0.0f);
  MatMulSimd(m.w, nullptr, 0, nullptr);
}

TEST_F(MatMulTest, RejectsInconsistentMatrices) {
  OwnedMatrix m = MakeMatrix(WeightFormat::kE4M3Blocked, 4, 8, 128, 128, Draw(), 1);
  std::vector<float> x(8), y(4);
  m.w.scales = nullptr;
  EXPECT_THROW(MatMulSimd(m.w, x.data(), 1, y.data()), std::invalid_argument);
  OwnedMatrix odd = MakeMatrix(WeightFormat::kE2M1Grouped, 4, 8, 1, 32, Draw(), 1);
  odd.w.cols = 7;
  EXPECT_THROW(MatMulSimd(odd.w, x.data(), 1, y.data()), std::invalid_argument);
  EXPECT_THROW(MatMulSimd(m.w, x.data(), -1, y.data()), std::invalid_argument);
}

TEST(MatMulTargets, AtLeastOneCompiledTargetRuns) {
  std::string names;
  for (const int64_t target : hwy::SupportedAndGeneratedTargets()) names += std::string(" ") + hwy::TargetName(target);
  RecordProperty("targets", names);
  std::printf("MatMul targets run by these tests:%s\n", names.c_str());
  EXPECT_FALSE(names.empty());
}

}  // namespace
}  // namespace dsv4
