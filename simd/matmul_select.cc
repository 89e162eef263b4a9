#include <atomic>
#include <stdexcept>

#include "simd/matmul.h"

namespace dsv4 {
namespace {

std::atomic<MatMulImpl> g_kernels{MatMulImpl::kReference};

}  // namespace

void SetMatMulKernels(MatMulImpl kernels) { g_kernels.store(kernels); }

MatMulImpl ActiveMatMulKernels() { return g_kernels.load(std::memory_order_relaxed); }

MatMulImpl ParseMatMulKernels(const std::string& name) {
  if (name == "reference") return MatMulImpl::kReference;
  if (name == "simd") return MatMulImpl::kSimd;
  throw std::invalid_argument("--matmul: \"" + name + "\" is not one of reference, simd");
}

void MatMul(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  if (ActiveMatMulKernels() == MatMulImpl::kSimd) {
    MatMulSimd(w, x, batch, y);
  } else {
    MatMulReference(w, x, batch, y);
  }
}

}  // namespace dsv4
