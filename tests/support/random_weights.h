// Random weight matrices in every kernel format, with the edge codes and
// E8M0 scale ranges the kernel tests need, and random activations.
#pragma once

#include <cstdint>
#include <vector>

#include "simd/weight_matrix.h"

namespace dsv4::testing {

// A WeightMatrix with the bytes it points to.
struct OwnedMatrix {
  std::vector<uint8_t> data, scales;
  WeightMatrix w;
};

// How to draw the values of a matrix.
struct Draw {
  uint8_t scale_lo = 118, scale_hi = 136;  // E8M0 codes, inclusive
  bool small_codes = false;                // FP8/FP4 magnitudes below 2 (for huge scales)
};

// F32/BF16 values in [-1, 1) (BF16: [-8, 8)), E4M3 codes with zero, -0,
// subnormal, smallest normal and +-448 among them (never NaN), E2M1 pairs;
// scales uniform in [draw.scale_lo, draw.scale_hi]. block_rows/block_cols
// apply to the scaled formats (E2M1: block_rows is 1).
OwnedMatrix MakeMatrix(WeightFormat format, int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols,
                       const Draw& draw, uint32_t seed);

// n floats uniform in [-magnitude, magnitude).
std::vector<float> RandomVector(int64_t n, float magnitude, uint32_t seed);

}  // namespace dsv4::testing
