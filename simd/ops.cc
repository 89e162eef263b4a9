#include "simd/ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/ops.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "simd/ops-inl.h"

#if HWY_ONCE
#include "hwy/aligned_allocator.h"
#include "simd/number_formats.h"

namespace dsv4::ops {

HWY_EXPORT(RmsNorm);
HWY_EXPORT(WeightedRowSums);
HWY_EXPORT(RotatePairs);
HWY_EXPORT(SoftmaxWithSink);
HWY_EXPORT(Hadamard);
HWY_EXPORT(TopK);

void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* y) {
  HWY_DYNAMIC_DISPATCH(RmsNorm)(x, w, n, eps, y);
}

void RmsNormReference(const float* x, const float* w, int64_t n, double eps, float* y) {
  double partial[kSquarePartials] = {};
  const int64_t whole = n / kSquarePartials * kSquarePartials;
  for (int64_t i = 0; i < whole; ++i) partial[i % kSquarePartials] += static_cast<double>(x[i]) * x[i];
  double sum = 0;
  for (const double p : partial) sum += p;
  for (int64_t i = whole; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = (w ? w[i] : 1.0f) * (x[i] * r);
}

void WeightedRowSums(const double* p, int64_t p_stride, int64_t heads, const float* const* rows, int64_t n,
                     int64_t d, double* acc) {
  HWY_DYNAMIC_DISPATCH(WeightedRowSums)(p, p_stride, heads, rows, n, d, acc);
}

void WeightedRowSumsReference(const double* p, int64_t p_stride, int64_t heads, const float* const* rows, int64_t n,
                              int64_t d, double* acc) {
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t e = 0; e < n; ++e) {
      for (int64_t i = 0; i < d; ++i) {
        acc[h * d + i] = std::fma(p[h * p_stride + e], static_cast<double>(rows[e][i]), acc[h * d + i]);
      }
    }
  }
}

void RotatePairs(float* x, const double* cos_pairs, const double* sin_pairs, int64_t n) {
  HWY_DYNAMIC_DISPATCH(RotatePairs)(x, cos_pairs, sin_pairs, n);
}

void RotatePairsReference(float* x, const double* cos_pairs, const double* sin_pairs, int64_t n) {
  for (int64_t i = 0; i < n; i += 2) {
    const double re = x[i], im = x[i + 1];
    x[i] = static_cast<float>(re * cos_pairs[i] + im * sin_pairs[i]);
    x[i + 1] = static_cast<float>(im * cos_pairs[i + 1] + re * sin_pairs[i + 1]);
  }
}

void SoftmaxWithSink(const float* scores, int64_t n, float sink, float* probs) {
  HWY_DYNAMIC_DISPATCH(SoftmaxWithSink)(scores, n, sink, probs);
}

void SoftmaxWithSinkReference(const float* scores, int64_t n, float sink, float* probs) {
  float max = scores[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, scores[i]);
  double z = std::exp(static_cast<double>(sink) - max);
  for (int64_t i = 0; i < n; ++i) {
    probs[i] = std::exp(scores[i] - max);
    z += probs[i];
  }
  for (int64_t i = 0; i < n; ++i) probs[i] = static_cast<float>(probs[i] / z);
}

void Hadamard(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Hadamard)(x, n); }

// Selection instead of sorting: the k-th largest value by nth_element, then
// every index above it (vectorized) and the lowest-index ties at it, sorted.
std::vector<int32_t> TopK(const float* values, int64_t n, int64_t k) {
  std::vector<int32_t> best;
  HWY_DYNAMIC_DISPATCH(TopK)(values, n, k, best);
  return best;
}

std::vector<int32_t> TopKReference(const float* values, int64_t n, int64_t k) {
  std::vector<int32_t> index(n);
  std::iota(index.begin(), index.end(), 0);
  k = std::max<int64_t>(0, std::min(k, n));
  std::partial_sort(index.begin(), index.begin() + k, index.end(), [values](int32_t a, int32_t b) {
    return values[a] > values[b] || (values[a] == values[b] && a < b);
  });
  index.resize(k);
  return index;
}

}  // namespace dsv4::ops
#endif  // HWY_ONCE
