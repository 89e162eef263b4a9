// Scalar helpers of the forward pass too small for a kernel of their own.
#pragma once

#include <cmath>

namespace dsv4 {

inline float Sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

}  // namespace dsv4
