#include <atomic>
#include <stdexcept>

#include "simd/matmul.h"

#include "simd/bf16_weights.h"
#include "simd/matrix_engine.h"

namespace dsv4 {
namespace {

std::atomic<MatMulImpl> g_kernels{MatMulImpl::kReference};
thread_local MatMulPrecision t_precision = MatMulPrecision::kExact;

}  // namespace

void SetMatMulKernels(MatMulImpl kernels) { g_kernels.store(kernels); }

MatMulImpl ActiveMatMulKernels() { return g_kernels.load(std::memory_order_relaxed); }

MatMulImpl ParseMatMulKernels(const std::string& name) {
  if (name == "reference") return MatMulImpl::kReference;
  if (name == "simd") return MatMulImpl::kSimd;
  throw std::invalid_argument("--matmul: \"" + name + "\" is not one of reference, simd");
}

MatMulPrecision ActiveMatMulPrecision() { return t_precision; }

MatMulPrecisionScope::MatMulPrecisionScope(MatMulPrecision precision) : previous_(t_precision) {
  t_precision = precision;
}

MatMulPrecisionScope::~MatMulPrecisionScope() { t_precision = previous_; }

bool RunsOnMatrixEngine(const WeightMatrix& w, int64_t batch) {
  return t_precision == MatMulPrecision::kBf16Activations && batch >= kBf16MinRows && ExactInBf16(w.format) &&
         !Bf16MatrixUnit().empty();
}

void MatMul(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  if (RunsOnMatrixEngine(w, batch)) {
    MatMulBf16(w, x, batch, y);
  } else if (ActiveMatMulKernels() == MatMulImpl::kSimd) {
    MatMulSimd(w, x, batch, y);
  } else {
    MatMulReference(w, x, batch, y);
  }
}

}  // namespace dsv4
