// Small per-row operations of the forward pass, in plain loops with wide
// accumulation. They are not where time goes (the weight matmuls are).
#pragma once

#include <cstdint>
#include <cmath>

namespace dsv4 {

// y = w * x / sqrt(mean(x^2) + eps); w may be null (no weight). y may alias x.
void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* y);
float Dot(const float* a, const float* b, int64_t n);
inline float Sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

}  // namespace dsv4
