#include <vector>

#include "simd/matmul.h"

namespace dsv4 {

void MatMulReference(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
#pragma omp parallel
  {
    std::vector<float> row(w.cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < w.rows; ++r) {
      DecodeRow(w, r, row.data());
      for (int64_t m = 0; m < batch; ++m) {
        const float* xm = x + m * w.cols;
        float sum = 0.0f;
        for (int64_t c = 0; c < w.cols; ++c) sum += row[c] * xm[c];
        y[m * w.rows + r] = sum;
      }
    }
  }
}

}  // namespace dsv4
