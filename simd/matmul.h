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
// output is the reference's own chain of rounded products and sums in column
// order, so the result is bit-identical to MatMulReference at every batch
// size, on every target, whatever the thread count: a row's outputs depend
// only on its own inputs (docs/performance.md, "Numerics and the SIMD
// kernels").
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

// Plain scalar reference of MatMul: decode a row, dot it with each input row
// in index order. Kernels are tested against it.
void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y);

// The reference's dot product: sum = fma(a[c], b[c], sum) for c = 0, 1, ...,
// one f32 rounding per step.
float SequentialDot(const float* a, const float* b, int64_t n);

}  // namespace dsv4
