// Weights and activations as bf16 for the matrix engines (simd/matrix_engine.h).
// FP8 E4M3 and FP4 E2M1 values times E8M0 power-of-two scales have at most
// four significant bits, so they are exact in bf16 (eight): only the
// activations lose bits on the bf16 path.
#pragma once

#include <cstdint>

#include "simd/weight_matrix.h"

namespace dsv4 {

// Formats whose decoded values bf16 holds exactly: BF16, E4M3 and E2M1 with
// their scales. F32 matrices (small ones, and KV rows multiplied as weights)
// are not among them.
bool ExactInBf16(WeightFormat format);

// Rows [begin, end) of w decoded into out[(r - begin) * w.cols + c] as bf16
// bits: the top half of DecodeRow's f32 for every format ExactInBf16
// accepts (exact unless a scale pushes values out of bf16's normal range,
// which no checkpoint does). The Highway kernels (dynamic dispatch), bit for
// bit the reference's.
void DecodeRowsBf16(const WeightMatrix& w, int64_t begin, int64_t end, uint16_t* out);

// The scalar reference of DecodeRowsBf16, and its columns [c_begin, c_end)
// of row r into out[0, c_end - c_begin) (the kernels' path for tails and
// for scales outside their exact range).
void DecodeRowsBf16Reference(const WeightMatrix& w, int64_t begin, int64_t end, uint16_t* out);
void DecodeColumnsBf16Reference(const WeightMatrix& w, int64_t r, int64_t c_begin, int64_t c_end, uint16_t* out);

// out[i] = x[i] rounded to the nearest bf16 (ties to even), i < n.
void RoundToBf16(const float* x, int64_t n, uint16_t* out);

}  // namespace dsv4
