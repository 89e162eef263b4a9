#include "engine/vector_ops.h"

#include <cmath>

namespace dsv4 {

void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* y) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(sum / n + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = (w ? w[i] : 1.0f) * (x[i] * r);
}

float Dot(const float* a, const float* b, int64_t n) {
  float sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace dsv4
