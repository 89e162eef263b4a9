// The one narrow interface through which the engine multiplies activations by
// weights: y[m][r] = sum_c W[r][c] * x[m][c] for m < batch, f32 activations in
// and out, f32 accumulation, weights decoded exactly. Parallel over output rows
// (OpenMP); never call it from inside a parallel region.
#pragma once

#include <cstdint>
#include <string>

#include "simd/weight_matrix.h"

namespace dsv4 {

// x: [batch][w.cols], y: [batch][w.rows], both dense row-major. Runs the
// implementation chosen with SetMatMulKernels (the reference by default).
void MatMul(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// The Highway kernels (dynamic dispatch over the compiled targets). Every
// output is the reference's own ChainedDot, so the result is bit-identical to
// MatMulReference at every batch size, on every target, whatever the thread
// count: a row's outputs depend only on its own inputs (docs/performance.md,
// "Numerics and the SIMD kernels").
void MatMulSimd(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// Which implementation MatMul runs, process-wide. Both give the same bits;
// the reference is the library default and the yardstick of the kernels'
// tests, the CLI selects the SIMD kernels unless told --matmul reference.
enum class MatMulImpl { kReference, kSimd };
void SetMatMulKernels(MatMulImpl kernels);
MatMulImpl ActiveMatMulKernels();
MatMulImpl ParseMatMulKernels(const std::string& name);  // "reference" | "simd"

// Whether MatMul and ExpertFfn may, on the calling thread, round activations
// to bf16 and run on the matrix engine (simd/matrix_engine.h): the weight
// GEMMs of Numerics::kFast. They do so only for weights exact in bf16 and at
// least kBf16MinRows input rows; everything else stays exact.
enum class MatMulPrecision { kExact, kBf16Activations };
MatMulPrecision ActiveMatMulPrecision();
// Sets the calling thread's precision for as long as it lives.
class MatMulPrecisionScope {
 public:
  explicit MatMulPrecisionScope(MatMulPrecision precision);
  ~MatMulPrecisionScope();
  MatMulPrecisionScope(const MatMulPrecisionScope&) = delete;
  MatMulPrecisionScope& operator=(const MatMulPrecisionScope&) = delete;

 private:
  MatMulPrecision previous_;
};
// Below this many rows, decoding the weights to bf16 costs more than the
// matrix engine saves (bench --kernels measures both sides).
inline constexpr int64_t kBf16MinRows = 32;
// Whether MatMul(w, x, batch, y) on the calling thread runs on the matrix engine.
bool RunsOnMatrixEngine(const WeightMatrix& w, int64_t batch);

// The Highway target MatMul runs on this CPU ("AVX3", "AVX2", ...).
const char* MatMulTargetName();

// Plain scalar reference of MatMul: decode a row, ChainedDot it with each
// input row. Kernels are tested against it.
void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// The order of every dot product of a row of w (w[0, n) decoded exactly) with
// an input row x: kDotChains chains of fused multiply-adds, chain j =
// fma(w[c], x[c], chain j) over the columns c it takes, in column order, then
// SumDotChains. Chain j takes the columns c with c % 16 == j, except in E2M1
// (two columns per byte), where it takes those with (c / 2) % 16 == j: the
// order in which a vector of 16 chains meets the columns when it decodes 16
// bytes of weights at a time (docs/performance.md, "Numerics and the SIMD
// kernels"). Sixteen independent chains keep the FMA units busy where one
// chain per row waited on each add.
inline constexpr int kDotChains = 16;
float ChainedDot(const float* w, const float* x, int64_t n, WeightFormat format);

// The fixed tree that ends a chained dot product: chains[i] += chains[i + h]
// for h = 8, 4, 2, 1; returns chains[0]. Inline, so the kernels sum alike.
inline float SumDotChains(float* chains) {
  for (int h = kDotChains / 2; h >= 1; h /= 2) {
    for (int i = 0; i < h; ++i) chains[i] += chains[i + h];
  }
  return chains[0];
}

}  // namespace dsv4
