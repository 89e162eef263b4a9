// One SIMD MatMul split into the steps its OpenMP team runs, for kernels that
// run several matmuls in one team (simd/expert_ffn.cc) as MatMulSimd runs one:
//
//   MatMulCall call(w, x, batch, y);
//   PieceRuns pieces({&w}, {batch}, call.TeamSize());  // simd/piece_runs.h
//   #pragma omp parallel num_threads(call.TeamSize())
//   { call.Pack(t, n);  #pragma omp barrier
//     pieces.Take(t, n, [&](const RowPiece& r) { call.Rows(r.begin, r.end); }); }
#pragma once

#include <cstdint>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "simd/matmul_job.h"
#include "simd/weight_matrix.h"

namespace dsv4 {

class MatMulCall {
 public:
  // Plans y = x W^T (the arguments as MatMul's; x is read only by Pack).
  // With `input_of`, a call with the same weight format, scale blocks and
  // columns and the same x and batch, it reads that call's packed input and
  // needs no Pack of its own.
  MatMulCall(const WeightMatrix& w, const float* x, int64_t batch, float* y, const MatMulCall* input_of = nullptr);

  // Threads worth waking for this product (at least 1).
  int TeamSize() const;
  // Thread `thread` of `threads` packs its share of the input rows.
  void Pack(int thread, int threads) const;
  // Computes output rows [begin, end) for every input row, after the packing
  // is complete.
  void Rows(int64_t begin, int64_t end) const;

 private:
  MatMulKernels kernels_;
  std::vector<float> tile_scales_;
  hwy::AlignedFreeUniquePtr<float[]> packed_;
  MatMulJob job_;
};

}  // namespace dsv4
