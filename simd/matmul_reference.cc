#include <cmath>
#include <vector>

#include "simd/matmul.h"

namespace dsv4 {

// std::fma is exact-then-rounded on every target, whatever the compiler would
// contract on its own.
float ChainedDot(const float* w, const float* x, int64_t n, WeightFormat format) {
  float chains[kDotChains] = {};
  const bool two_per_byte = format == WeightFormat::kE2M1Grouped;
  for (int64_t c = 0; c < n; ++c) {
    float& chain = chains[(two_per_byte ? c / 2 : c) % kDotChains];
    chain = std::fma(w[c], x[c], chain);
  }
  return SumDotChains(chains);
}

void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
#pragma omp parallel
  {
    std::vector<float> row(w.cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      DecodeRow(w, r, row.data());
      for (int64_t m = 0; m < batch; ++m) y[m * w.rows + r] = ChainedDot(row.data(), x + m * w.cols, w.cols, w.format);
    }
  }
}

}  // namespace dsv4
