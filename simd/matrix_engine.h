// The matrix engines of the CPU (AMX-BF16 tiles, AVX512-BF16 dot products)
// through oneDNN's bf16 matmul: what `--numerics fast` runs the weight GEMMs
// of prefill chunks and large batches on. Weights reach it exactly (FP8/FP4
// are exact in bf16, simd/bf16_weights.h); activations are rounded to bf16;
// sums are f32 in the order oneDNN's kernel for the shape chooses, so results
// are deterministic for one shape and thread count but not batch-invariant
// (contracts §1).
#pragma once

#include <cstdint>
#include <string>

#include "simd/weight_matrix.h"

namespace dsv4 {

// What oneDNN runs bf16 matmul on here: "AMX-BF16", "AVX512-BF16", or "" when
// it has no bf16 kernel for this CPU (it would emulate, slower than f32).
const std::string& Bf16MatrixUnit();

// The oneDNN implementation it picked for bf16 matmul (for example
// "brg:avx512_core_amx_bf16"), or "" without one.
const std::string& Bf16MatMulImplementation();

// y[m][r] = sum_c bf16(x[m][c]) * W[r][c] with f32 sums; x: [batch][w.cols],
// y: [batch][w.rows]. Needs ExactInBf16(w.format) and a Bf16MatrixUnit().
// Decodes W to bf16 per call (parallel over rows), then one oneDNN matmul.
// Call it outside any parallel region.
void MatMulBf16(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// oneDNN's bf16 matmul alone on bf16 inputs it owns: [m x k] by [k x n] into
// f32, weights in the layout it prefers. Returns GFLOP/s of the best of
// `repeats` timed runs, the peak `bench --kernels` divides by.
double Bf16MatMulPeakGflops(int64_t m, int64_t k, int64_t n, int repeats);

}  // namespace dsv4
