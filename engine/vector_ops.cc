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
  // One pass with a heap of the k best so far (its top is the worst of
  // them): O(n) time in the usual case and O(k) memory, which matters for
  // the indexer's top-k over up to 262,144 rows per query.
  k = std::max<int64_t>(0, std::min(k, n));
  auto better = [values](int32_t a, int32_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
  std::vector<int32_t> best;
  best.reserve(k);
  for (int32_t i = 0; i < n; ++i) {
    if (static_cast<int64_t>(best.size()) < k) {
      best.push_back(i);
      std::push_heap(best.begin(), best.end(), better);
    } else if (k > 0 && better(i, best.front())) {
      std::pop_heap(best.begin(), best.end(), better);
      best.back() = i;
      std::push_heap(best.begin(), best.end(), better);
    }
  }
  std::sort(best.begin(), best.end(), better);
  return best;
}

}  // namespace dsv4
