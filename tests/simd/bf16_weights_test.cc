// Weights decoded to bf16 for the matrix engine: the kernels equal the
// scalar reference on every target, and both are exactly the f32 decode's
// values (their low halves are zero) in every format, row lengths that end
// inside a block and scale blocks of other sizes, at the edge codes and
// at scales where adding to the exponent would leave bf16's normal range;
// activations rounded to nearest even.
#include "simd/bf16_weights.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "simd/number_formats.h"
#include "tests/support/for_each_target.h"
#include "tests/support/random_weights.h"

namespace dsv4 {
namespace {

using testing::Draw;
using testing::MakeMatrix;
using testing::OwnedMatrix;

// On every compiled target: the kernel equals the reference bit for bit, and
// both equal the top half of DecodeRow's f32; with `exact`, the low half is
// zero too (the value itself is a bf16).
void ExpectExactDecode(const WeightMatrix& w, bool exact = true) {
  std::vector<float> row(w.cols);
  std::vector<uint16_t> bf16(w.rows * w.cols), reference(w.rows * w.cols);
  DecodeRowsBf16Reference(w, 0, w.rows, reference.data());
  testing::ForEachTarget([&] {
    std::fill(bf16.begin(), bf16.end(), 0xDEAD);
    DecodeRowsBf16(w, 0, w.rows, bf16.data());
    ASSERT_EQ(bf16, reference);
  });
  for (int64_t r = 0; r < w.rows; ++r) {
    DecodeRow(w, r, row.data());
    for (int64_t c = 0; c < w.cols; ++c) {
      const uint32_t bits = F32ToBits(row[c]);
      if (exact) ASSERT_EQ(bits & 0xFFFF, 0u) << "not exact in bf16 at row " << r << " col " << c;
      ASSERT_EQ(bf16[r * w.cols + c], bits >> 16) << "row " << r << " col " << c;
    }
  }
}

TEST(Bf16Weights, DecodeEqualsTheExactDecodeInEveryFormat) {
  Draw draw;  // scales 2^-9 .. 2^9, codes with zero, -0, subnormals and +-448
  ExpectExactDecode(MakeMatrix(WeightFormat::kE4M3Blocked, 300, 320, 128, 128, draw, 1).w);
  ExpectExactDecode(MakeMatrix(WeightFormat::kE2M1Grouped, 70, 96, 1, 32, draw, 2).w);
  ExpectExactDecode(MakeMatrix(WeightFormat::kBF16, 20, 50, 1, 1, draw, 3).w);
  ExpectExactDecode(MakeMatrix(WeightFormat::kE4M3Blocked, 40, 200, 16, 40, draw, 8).w);
  ExpectExactDecode(MakeMatrix(WeightFormat::kE2M1Grouped, 9, 208, 1, 64, draw, 9).w);
}

TEST(Bf16Weights, DecodesARowSliceThatStartsInsideAScaleBlock) {
  const OwnedMatrix m = MakeMatrix(WeightFormat::kE4M3Blocked, 260, 256, 128, 128, Draw{}, 4);
  ExpectExactDecode(SliceRows(m.w, 100, 150));
}

// Scales at the ends of E8M0 (2^-126 .. 2^127) push small or large codes out
// of bf16's normal range, where the exponent shortcut would be wrong: those
// blocks take the f32 path and give the top half of DecodeRow's value (an
// f32 subnormal below bf16's smallest is not exact in bf16 at all).
TEST(Bf16Weights, ExtremeScalesFallBackToTheF32Path) {
  for (const auto& [lo, hi] : {std::pair<uint8_t, uint8_t>{1, 12}, {240, 254}}) {
    Draw draw;
    draw.scale_lo = lo;
    draw.scale_hi = hi;
    draw.small_codes = hi > 200;  // keeps +-448 * 2^127 finite
    SCOPED_TRACE(int{lo});
    ExpectExactDecode(MakeMatrix(WeightFormat::kE2M1Grouped, 8, 64, 1, 32, draw, 5).w, /*exact=*/false);
    ExpectExactDecode(MakeMatrix(WeightFormat::kE4M3Blocked, 8, 256, 128, 128, draw, 6).w, /*exact=*/false);
  }
}

TEST(Bf16Weights, F32WeightsAreRefused) {
  const OwnedMatrix m = MakeMatrix(WeightFormat::kF32, 2, 4, 1, 1, Draw{}, 7);
  EXPECT_FALSE(ExactInBf16(WeightFormat::kF32));
  std::vector<uint16_t> out(8);
  EXPECT_THROW(DecodeRowsBf16(m.w, 0, 2, out.data()), std::invalid_argument);
}

TEST(Bf16Weights, RoundsActivationsToNearestEven) {
  const std::vector<float> x = {1.0f, BitsToF32(0x3F808000), BitsToF32(0x3F818000), BitsToF32(0x3F808001),
                                -2.5e-3f};
  std::vector<uint16_t> out(x.size());
  RoundToBf16(x.data(), x.size(), out.data());
  EXPECT_EQ(out[0], 0x3F80);
  EXPECT_EQ(out[1], 0x3F80);  // a tie goes to the even neighbour
  EXPECT_EQ(out[2], 0x3F82);
  EXPECT_EQ(out[3], 0x3F81);
  EXPECT_EQ(out[4], F32ToBf16(-2.5e-3f));
}

}  // namespace
}  // namespace dsv4
