#include "engine/vector_ops.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

std::vector<int32_t> TopK(const float* values, int64_t n, int64_t k) {
  std::vector<int32_t> index(n);
  std::iota(index.begin(), index.end(), 0);
  k = std::min(k, n);
  auto better = [values](int32_t a, int32_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
  std::partial_sort(index.begin(), index.begin() + k, index.end(), better);
  index.resize(k);
  return index;
}

}  // namespace dsv4
