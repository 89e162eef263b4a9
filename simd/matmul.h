// The one narrow interface through which the engine multiplies activations by
// weights: y[m][r] = sum_c W[r][c] * x[m][c] for m < batch, f32 activations in
// and out, f32 accumulation, weights decoded exactly. Parallel over output rows
// (OpenMP); never call it from inside a parallel region.
#pragma once

#include <cstdint>

#include "simd/weight_matrix.h"

namespace dsv4 {

// x: [batch][w.cols], y: [batch][w.rows], both dense row-major.
void MatMul(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// Plain scalar reference of MatMul: decode a row, dot it with each input row
// in index order. Kernels are tested against it.
void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y);

}  // namespace dsv4
