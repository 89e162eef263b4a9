// oneDNN's bf16 matmul as --numerics fast uses it: with the inputs rounded to
// bf16 it equals the exact reference up to f32 summation order, in every
// weight format, across weight panels and row slices; MatMul takes it only
// under a bf16 precision scope, from kBf16MinRows rows and for weights exact
// in bf16. Skipped where oneDNN has no bf16 unit (AVX2-only CPUs).
#include "simd/matrix_engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "simd/bf16_weights.h"
#include "simd/expert_ffn.h"
#include "simd/matmul.h"
#include "simd/number_formats.h"
#include "tests/support/random_weights.h"

namespace dsv4 {
namespace {

using testing::Draw;
using testing::MakeMatrix;
using testing::OwnedMatrix;
using testing::RandomVector;

#define SKIP_WITHOUT_BF16_UNIT() \
  if (Bf16MatrixUnit().empty()) GTEST_SKIP() << "oneDNN has no bf16 matmul on this CPU"

std::vector<float> RoundedToBf16(const std::vector<float>& x) {
  std::vector<float> rounded(x.size());
  for (size_t i = 0; i < x.size(); ++i) rounded[i] = Bf16ToF32(F32ToBf16(x[i]));
  return rounded;
}

// MatMulBf16 against the reference on bf16-rounded inputs: the products are
// then the same exact values, and only the order of the f32 sums differs, so
// each output is within 2e-5 of sum |w x| (a few hundred f32 ulps of it).
void ExpectMatchesReference(const WeightMatrix& w, int64_t batch, uint32_t seed) {
  const std::vector<float> x = RandomVector(batch * w.cols, 1.0f, seed), rounded = RoundedToBf16(x);
  std::vector<float> y(batch * w.rows), expected(batch * w.rows), row(w.cols);
  MatMulBf16(w, x.data(), batch, y.data());
  MatMulReference(w, rounded.data(), batch, expected.data());
  for (int64_t r = 0; r < w.rows; ++r) {
    DecodeRow(w, r, row.data());
    for (int64_t m = 0; m < batch; ++m) {
      double magnitude = 0;
      for (int64_t c = 0; c < w.cols; ++c) magnitude += std::fabs(double{row[c]} * rounded[m * w.cols + c]);
      ASSERT_NEAR(y[m * w.rows + r], expected[m * w.rows + r], 2e-5 * magnitude + 1e-30)
          << "row " << r << " input " << m;
    }
  }
}

TEST(MatrixEngine, NamesItsUnit) {
  SKIP_WITHOUT_BF16_UNIT();
  std::printf("bf16 unit %s, oneDNN %s\n", Bf16MatrixUnit().c_str(), Bf16MatMulImplementation().c_str());
  EXPECT_TRUE(Bf16MatrixUnit() == "AMX-BF16" || Bf16MatrixUnit() == "AVX512-BF16");
  EXPECT_GT(Bf16MatMulPeakGflops(64, 256, 256, 2), 0);
}

TEST(MatrixEngine, EqualsTheReferenceOnRoundedInputsInEveryFormat) {
  SKIP_WITHOUT_BF16_UNIT();
  Draw draw;
  draw.scale_lo = 120;
  draw.scale_hi = 126;
  for (const int64_t batch : {1, 33, 70}) {
    SCOPED_TRACE(batch);
    ExpectMatchesReference(MakeMatrix(WeightFormat::kE4M3Blocked, 200, 384, 128, 128, draw, 1).w, batch, 11);
    ExpectMatchesReference(MakeMatrix(WeightFormat::kE2M1Grouped, 130, 256, 1, 32, draw, 2).w, batch, 12);
    ExpectMatchesReference(MakeMatrix(WeightFormat::kBF16, 90, 200, 1, 1, draw, 3).w, batch, 13);
  }
}

// 4096 columns make a panel of 1024 weight rows: 1100 rows take two oneDNN
// calls, the second writing into the middle of each output row.
TEST(MatrixEngine, SplitsTallMatricesIntoPanels) {
  SKIP_WITHOUT_BF16_UNIT();
  Draw draw;
  draw.scale_lo = 118;
  draw.scale_hi = 122;
  ExpectMatchesReference(MakeMatrix(WeightFormat::kE2M1Grouped, 1100, 4096, 1, 32, draw, 4).w, 34, 14);
}

TEST(MatrixEngine, MultipliesARowSliceInsideAScaleBlock) {
  SKIP_WITHOUT_BF16_UNIT();
  const OwnedMatrix m = MakeMatrix(WeightFormat::kE4M3Blocked, 300, 256, 128, 128, Draw{}, 5);
  ExpectMatchesReference(SliceRows(m.w, 70, 150), 40, 15);
}

TEST(MatrixEngine, MatMulUsesItOnlyUnderABf16ScopeFromTheMinimumRows) {
  SKIP_WITHOUT_BF16_UNIT();
  SetMatMulKernels(MatMulImpl::kSimd);
  const OwnedMatrix fp8 = MakeMatrix(WeightFormat::kE4M3Blocked, 160, 256, 128, 128, Draw{}, 6);
  const OwnedMatrix f32 = MakeMatrix(WeightFormat::kF32, 48, 256, 1, 1, Draw{}, 7);
  const int64_t rows = kBf16MinRows;
  const std::vector<float> x = RandomVector(rows * 256, 1.0f, 16);
  auto product = [&](const WeightMatrix& w, int64_t batch, void (*matmul)(const WeightMatrix&, const float*,
                                                                          int64_t, float*)) {
    std::vector<float> y(batch * w.rows);
    matmul(w, x.data(), batch, y.data());
    return y;
  };
  EXPECT_EQ(product(fp8.w, rows, MatMul), product(fp8.w, rows, MatMulSimd));  // exact outside a scope
  {
    const MatMulPrecisionScope scope(MatMulPrecision::kBf16Activations);
    EXPECT_TRUE(RunsOnMatrixEngine(fp8.w, rows));
    EXPECT_EQ(product(fp8.w, rows, MatMul), product(fp8.w, rows, MatMulBf16));
    EXPECT_FALSE(RunsOnMatrixEngine(fp8.w, rows - 1));
    EXPECT_EQ(product(fp8.w, rows - 1, MatMul), product(fp8.w, rows - 1, MatMulSimd));
    EXPECT_FALSE(RunsOnMatrixEngine(f32.w, rows));
    EXPECT_EQ(product(f32.w, rows, MatMul), product(f32.w, rows, MatMulSimd));
  }
  EXPECT_EQ(ActiveMatMulPrecision(), MatMulPrecision::kExact);
  SetMatMulKernels(MatMulImpl::kReference);
}

// The expert feed-forward under the scope: close to the exact one (only the
// activations of its three products round), cosine per output row.
TEST(MatrixEngine, ExpertFfnRunsItsProductsOnTheEngine) {
  SKIP_WITHOUT_BF16_UNIT();
  Draw draw;
  draw.scale_lo = 121;
  draw.scale_hi = 124;
  const OwnedMatrix w1 = MakeMatrix(WeightFormat::kE2M1Grouped, 128, 256, 1, 32, draw, 8),
                    w3 = MakeMatrix(WeightFormat::kE2M1Grouped, 128, 256, 1, 32, draw, 9),
                    w2 = MakeMatrix(WeightFormat::kE2M1Grouped, 256, 128, 1, 32, draw, 10);
  const int64_t batch = 40;
  const std::vector<float> x = RandomVector(batch * 256, 1.0f, 17), route = RandomVector(batch, 1.0f, 18);
  std::vector<float> fast(batch * 256), exact(batch * 256);
  {
    const MatMulPrecisionScope scope(MatMulPrecision::kBf16Activations);
    ExpertFfn(w1.w, w3.w, w2.w, x.data(), batch, route.data(), 4.0f, fast.data());
  }
  ExpertFfnReference(w1.w, w3.w, w2.w, x.data(), batch, route.data(), 4.0f, exact.data());
  EXPECT_NE(fast, exact);  // it did round
  for (int64_t m = 0; m < batch; ++m) {
    double dot = 0, a = 0, b = 0;
    for (int64_t c = 0; c < 256; ++c) {
      dot += double{fast[m * 256 + c]} * exact[m * 256 + c];
      a += double{fast[m * 256 + c]} * fast[m * 256 + c];
      b += double{exact[m * 256 + c]} * exact[m * 256 + c];
    }
    EXPECT_GT(dot / std::sqrt(a * b), 0.999) << "row " << m;
  }
}

}  // namespace
}  // namespace dsv4
