#include "simd/matmul.h"

namespace dsv4 {

// Until the Highway kernels land, the scalar reference serves every format.
void MatMul(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  MatMulReference(w, x, batch, y);
}

}  // namespace dsv4
