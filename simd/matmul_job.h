// What every target's MatMul kernels share: the job that the threads of one
// call read, and the per-target functions that run it (simd/matmul-inl.h).
#pragma once

#include <cstdint>
#include <limits>

#include "simd/weight_matrix.h"

namespace dsv4 {

// The range of a matrix's E4M3 tile scales (as f32), found once per call.
struct TileScaleRange {
  float min = std::numeric_limits<float>::infinity(), max = 0.0f;  // of those that are numbers
  bool any_nan = false;
};

// What the threads of one MatMul call share.
struct MatMulJob {
  const WeightMatrix* w = nullptr;
  const float* x = nullptr;  // caller's input [batch][w->cols]
  float* packed = nullptr;   // the input rows in the layout PlanPacking chose
  int64_t batch = 0;
  // kE4M3Blocked only: the E8M0 tile scales as f32, same shape as w->scales.
  const float* tile_scales = nullptr;
  TileScaleRange tile_scale_range;
  float* y = nullptr;  // [batch][w->rows]
};

// Returns how many floats job->packed must hold for job->w and job->batch
// (0 where the kernels read the input rows in place).
using PlanPackingFn = int64_t (*)(const MatMulJob& job);
// Copies input rows [m_begin, m_end) of job.x into job.packed.
using PackInputFn = void (*)(const MatMulJob& job, int64_t m_begin, int64_t m_end);
// Computes output rows (weight rows) [r_begin, r_end) for every input row.
using MatMulRowsFn = void (*)(const MatMulJob& job, int64_t r_begin, int64_t r_end);

// Both halves of one target, so a call never packs for one target and
// multiplies with another.
struct MatMulKernels {
  PlanPackingFn plan_packing;
  PackInputFn pack_input;
  MatMulRowsFn rows;
  const char* target;  // hwy::TargetName of the target they were compiled for
};

}  // namespace dsv4
