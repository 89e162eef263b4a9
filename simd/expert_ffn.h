// One MoE expert's feed-forward over the rows routed to it:
//   h = SwiGLU(x W1^T, x W3^T) * route_weight,   y = h W2^T,
// where SwiGLU(g, u) = silu(g) * u, and with limit > 0 the gate is first
// clamped from above (min(g, limit)) and the up projection on both sides
// (clamp(u, -limit, limit)). The route weight scales the activation before
// the down projection.
#pragma once

#include <cstdint>
#include <vector>

#include "simd/weight_matrix.h"

namespace dsv4 {

// x: [batch][w1.cols], route_weights: [batch], y: [batch][w2.rows]
// (overwritten). w1 and w3 have one shape and format; w2.cols == w1.rows.
// Runs ExpertFfnSimd or ExpertFfnReference as SetMatMulKernels selected, or
// its three products on the matrix engine where RunsOnMatrixEngine says so.
void ExpertFfn(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
               int64_t batch, const float* route_weights, float limit, float* y);

// One expert's product for ExpertFfnGroup: ExpertFfn's arguments but the
// limit, which the group shares.
struct ExpertFfnJob {
  const WeightMatrix* w1;
  const WeightMatrix* w3;
  const WeightMatrix* w2;
  const float* x;
  int64_t batch;
  const float* route_weights;
  float* y;
};

// ExpertFfn of every job, each output bit for bit ExpertFfn's. The jobs that
// ExpertFfnSimd would run share one OpenMP team and its barriers: their
// output rows are shared out as PieceRuns (simd/piece_runs.h), so experts
// with few rows each (decode) cost one fork and join for the group instead
// of one per expert, on any number of threads.
void ExpertFfnGroup(const std::vector<ExpertFfnJob>& jobs, float limit);

// One OpenMP team for the whole expert: w1 and w3 read one packed copy of
// the input, each thread activates the rows of h it computed (no pass over
// memory of its own), then w2 after one barrier and its packing. Every
// output equals MatMulSimd's for the same three products bit for bit, and so
// the reference's.
void ExpertFfnSimd(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                   int64_t batch, const float* route_weights, float limit, float* y);

// MatMulReference three times around SwiGluActivation.
void ExpertFfnReference(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                        int64_t batch, const float* route_weights, float limit, float* y);

// h for one element: silu(g') * u' * route_weight, in that order of f32
// operations, with g' and u' the (clamped) gate and up values.
float SwiGluActivation(float gate, float up, float limit, float route_weight);

}  // namespace dsv4
