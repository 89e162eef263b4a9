#include <vector>

#include "simd/matmul.h"

namespace dsv4 {

// Each product is rounded to f32 before it is added: this file is compiled
// with -ffp-contract=off (simd/CMakeLists.txt), so no optimization level can
// fuse them into an FMA chain, which rounds differently (docs/performance.md,
// "Numerics and the SIMD kernels"). The SIMD GEMM reproduces this order.
float SequentialDot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) sum += a[c] * b[c];
  return sum;
}

void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
#pragma omp parallel
  {
    std::vector<float> row(w.cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      DecodeRow(w, r, row.data());
      for (int64_t m = 0; m < batch; ++m) y[m * w.rows + r] = SequentialDot(row.data(), x + m * w.cols, w.cols);
    }
  }
}

}  // namespace dsv4
