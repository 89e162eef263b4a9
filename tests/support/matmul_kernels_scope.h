// The library's MatMul runs the scalar reference unless told otherwise
// (simd/matmul.h). Tests whose subject is not the kernels (KV layouts, spill,
// paging) run the SIMD kernels the command line runs: the same bits whatever
// the layout, at a fraction of the reference's time (most under sanitizers).
#pragma once

#include "simd/matmul.h"

namespace dsv4::testing {

// Runs MatMul with `kernels` for as long as it lives.
class MatMulKernelsScope {
 public:
  explicit MatMulKernelsScope(MatMulImpl kernels) { SetMatMulKernels(kernels); }
  ~MatMulKernelsScope() { SetMatMulKernels(MatMulImpl::kReference); }
  MatMulKernelsScope(const MatMulKernelsScope&) = delete;
  MatMulKernelsScope& operator=(const MatMulKernelsScope&) = delete;
};

}  // namespace dsv4::testing
