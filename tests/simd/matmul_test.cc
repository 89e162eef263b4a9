// MatMul on every compiled target this CPU can run, against MatMulReference:
// odd shapes (partial vectors, partial scale blocks, partial register tiles
// and panels), every weight format, edge codes and extreme E8M0 scales.
#include "simd/matmul.h"
#include "simd/roofline.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

  // MatMul on every target vs the reference. From kMatMulSimdExactBatch
  // inputs on, bit for bit. Below it only f32 reassociation may differ:
  // |y - ref| <= 1e-5 * sum |w * x| (plus subnormal rounding, which is
  // absolute: at most half an f32 subnormal step per product and sum).
  void ExpectMatchesReference(const WeightMatrix& w, const std::vector<float>& x, int64_t batch) {
    const int64_t rows = w.rows, cols = w.cols;
    std::vector<float> expected(batch * rows), actual(batch * rows);
    MatMulReference(w, x.data(), batch, expected.data());
    std::vector<double> magnitude(batch * rows, 0.0);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      DecodeRow(w, r, row.data());
      for (int64_t m = 0; m < batch; ++m) {
        double sum = 0.0;
        for (int64_t c = 0; c < cols; ++c) sum += std::fabs(static_cast<double>(row[c]) * x[m * cols + c]);
        magnitude[m * rows + r] = sum;
      }
    }
    const double subnormal_slack = std::numeric_limits<float>::denorm_min() * 2.0 * (cols + 1);
    const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
    ASSERT_FALSE(targets.empty());
    for (const int64_t target : targets) {
      hwy::SetSupportedTargetsForTest(target);
      std::fill(actual.begin(), actual.end(), std::nanf(""));
      MatMulSimd(w, x.data(), batch, actual.data());
      int64_t mismatches = 0;
      const bool exact = batch >= kMatMulSimdExactBatch;
      for (int64_t i = 0; i < batch * rows; ++i) {
        ASSERT_TRUE(std::isfinite(expected[i])) << "test data overflowed at " << i;
        const double error = std::fabs(static_cast<double>(actual[i]) - expected[i]);
        // Exact: the same bits, down to the sign of a zero.
        const double bound = exact ? (std::signbit(actual[i]) == std::signbit(expected[i]) ? 0.0 : -1.0)
                                   : 1e-5 * magnitude[i] + subnormal_slack;
        if (!(error <= bound) && mismatches++ == 0) {
          ADD_FAILURE() << hwy::TargetName(target) << " " << KernelFormatName(w.format) << " " << rows << "x" << cols
                        << " blocks " << w.block_rows << "x" << w.block_cols << " batch " << batch << ": y[" << i / rows
                        << "][" << i % rows << "] = " << actual[i] << ", reference " << expected[i] << ", bound "
                        << bound;
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
// Rows and columns that are not multiples of the vector width, the row pair,
// the 4-row register tile, the 64-row panel, the 128-column scale block or the
// 512-column panel, plus whole ones.
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

TEST_F(MatMulTest, TinyE8M0Scales) {
  Draw draw;
  draw.scale_lo = 0;  // 2^-127 .. 2^-120: products near and below the f32 normal range
  draw.scale_hi = 7;
  for (const int64_t batch : {1, 3}) {
    CheckShape(WeightFormat::kE4M3Blocked, 40, 300, batch, 128, 128, draw);
    CheckShape(WeightFormat::kE2M1Grouped, 40, 300, batch, 1, 32, draw);
  }
}

TEST_F(MatMulTest, HugeE8M0Scales) {
  Draw draw;
  draw.scale_lo = 250;  // up to 2^127 on weights below 2: finite weights
  draw.scale_hi = 254;
  draw.small_codes = true;
  const float x_magnitude = std::ldexp(1.0f, -40);  // and finite sums
  for (const int64_t batch : {1, 3}) {
    CheckShape(WeightFormat::kE4M3Blocked, 40, 300, batch, 128, 128, draw, x_magnitude);
    CheckShape(WeightFormat::kE2M1Grouped, 40, 300, batch, 1, 32, draw, x_magnitude);
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
