#include "simd/expert_ffn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "simd/matmul.h"
#include "simd/matmul_call.h"

namespace dsv4 {
namespace {

void CheckShapes(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2) {
  if (w1.format != w3.format || w1.rows != w3.rows || w1.cols != w3.cols || w1.block_rows != w3.block_rows ||
      w1.block_cols != w3.block_cols) {
    throw std::invalid_argument("ExpertFfn: w1 and w3 differ in shape or format");
  }
  if (w2.cols != w1.rows) throw std::invalid_argument("ExpertFfn: w2 columns differ from w1 rows");
}

void Activate(const float* up, int64_t batch, int64_t inner, int64_t begin, int64_t end, const float* route_weights,
              float limit, float* gate) {
  for (int64_t m = 0; m < batch; ++m) {
    for (int64_t c = begin; c < end; ++c) {
      gate[m * inner + c] = SwiGluActivation(gate[m * inner + c], up[m * inner + c], limit, route_weights[m]);
    }
  }
}

// The three products one after another, each by `matmul`.
void ExpertFfnWith(void (*matmul)(const WeightMatrix&, const float*, int64_t, float*), const WeightMatrix& w1,
                   const WeightMatrix& w3, const WeightMatrix& w2, const float* x, int64_t batch,
                   const float* route_weights, float limit, float* y) {
  CheckShapes(w1, w3, w2);
  const int64_t inner = w1.rows;
  std::vector<float> gate(batch * inner), up(batch * inner);
  matmul(w1, x, batch, gate.data());
  matmul(w3, x, batch, up.data());
  Activate(up.data(), batch, inner, 0, inner, route_weights, limit, gate.data());
  matmul(w2, gate.data(), batch, y);
}

}  // namespace

float SwiGluActivation(float gate, float up, float limit, float route_weight) {
  if (limit > 0) {
    gate = std::min(gate, limit);
    up = std::clamp(up, -limit, limit);
  }
  return gate / (1.0f + std::exp(-gate)) * up * route_weight;
}

void ExpertFfn(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
               int64_t batch, const float* route_weights, float limit, float* y) {
  if (RunsOnMatrixEngine(w1, batch)) {
    ExpertFfnWith(MatMul, w1, w3, w2, x, batch, route_weights, limit, y);
  } else if (ActiveMatMulKernels() == MatMulImpl::kSimd) {
    ExpertFfnSimd(w1, w3, w2, x, batch, route_weights, limit, y);
  } else {
    ExpertFfnReference(w1, w3, w2, x, batch, route_weights, limit, y);
  }
}

void ExpertFfnSimd(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                   int64_t batch, const float* route_weights, float limit, float* y) {
  CheckShapes(w1, w3, w2);
  const int64_t inner = w1.rows;
  std::vector<float> gate(batch * inner), up(batch * inner);
  const MatMulCall gate_call(w1, x, batch, gate.data());
  const MatMulCall up_call(w3, x, batch, up.data(), &gate_call);
  const MatMulCall down_call(w2, gate.data(), batch, y);
  if (batch == 0) return;
  const int team = std::max(gate_call.TeamSize(), down_call.TeamSize());
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    gate_call.Pack(t, n);
#pragma omp barrier
    int64_t begin, end;
    gate_call.RowRange(t, n, &begin, &end);
    gate_call.Rows(begin, end);
    up_call.Rows(begin, end);
    Activate(up.data(), batch, inner, begin, end, route_weights, limit, gate.data());
#pragma omp barrier
    down_call.Pack(t, n);
#pragma omp barrier
    down_call.Rows(t, n);
  }
}

void ExpertFfnReference(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                        int64_t batch, const float* route_weights, float limit, float* y) {
  ExpertFfnWith(MatMulReference, w1, w3, w2, x, batch, route_weights, limit, y);
}

}  // namespace dsv4
