#include <cmath>
#include <vector>

#include "simd/matmul.h"

namespace dsv4 {

// One fused multiply-add per column, in column order: the chain the SIMD
// kernels reproduce bit for bit (docs/performance.md, "Numerics and the SIMD
// kernels"). std::fma is exact-then-rounded on every target, whatever the
// compiler would contract on its own.
float SequentialDot(const float* a, const float* b, int64_t n) {
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) sum = std::fma(a[c], b[c], sum);
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
