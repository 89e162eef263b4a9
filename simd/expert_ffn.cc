#include "simd/expert_ffn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>
#include <vector>

#include "simd/matmul.h"
#include "simd/matmul_call.h"
#include "simd/piece_runs.h"

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

// The SIMD kernels' plan of one job: h's two halves and the three products.
struct PlannedExpert {
  std::vector<float> gate, up;
  std::optional<MatMulCall> gate_call, up_call, down_call;
};

// Every job on one team: the inputs packed, w1 and w3 (each thread
// activating the rows of h it computed), h packed, w2, with a barrier
// between the steps.
void RunInOneTeam(const std::vector<ExpertFfnJob>& jobs, float limit) {
  std::vector<PlannedExpert> plans(jobs.size());
  std::vector<const WeightMatrix*> firsts, seconds;
  std::vector<int64_t> batches;
  int team = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const ExpertFfnJob& job = jobs[j];
    CheckShapes(*job.w1, *job.w3, *job.w2);
    PlannedExpert& plan = plans[j];
    plan.gate.resize(job.batch * job.w1->rows);
    plan.up.resize(job.batch * job.w1->rows);
    plan.gate_call.emplace(*job.w1, job.x, job.batch, plan.gate.data());
    plan.up_call.emplace(*job.w3, job.x, job.batch, plan.up.data(), &*plan.gate_call);
    plan.down_call.emplace(*job.w2, plan.gate.data(), job.batch, job.y);
    firsts.push_back(job.w1);
    seconds.push_back(job.w2);
    batches.push_back(job.batch);
    team += std::max(plan.gate_call->TeamSize(), plan.down_call->TeamSize());
  }
  if (jobs.empty()) return;
  team = std::min(team, omp_get_max_threads());
  PieceRuns gate_up_pieces(firsts, batches, team), down_pieces(seconds, batches, team);
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    for (const PlannedExpert& plan : plans) plan.gate_call->Pack(t, n);
#pragma omp barrier
    gate_up_pieces.Take(t, n, [&](const RowPiece& piece) {
      PlannedExpert& plan = plans[piece.product];
      const ExpertFfnJob& job = jobs[piece.product];
      plan.gate_call->Rows(piece.begin, piece.end);
      plan.up_call->Rows(piece.begin, piece.end);
      Activate(plan.up.data(), job.batch, job.w1->rows, piece.begin, piece.end, job.route_weights, limit,
               plan.gate.data());
    });
#pragma omp barrier
    for (const PlannedExpert& plan : plans) plan.down_call->Pack(t, n);
#pragma omp barrier
    down_pieces.Take(t, n,
                     [&](const RowPiece& piece) { plans[piece.product].down_call->Rows(piece.begin, piece.end); });
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

// Whether an expert of this batch runs on the fused SIMD team: the SIMD
// kernels are selected and the matrix engine does not take it.
bool RunsOnSimdTeam(const WeightMatrix& w1, int64_t batch) {
  return ActiveMatMulKernels() == MatMulImpl::kSimd && !RunsOnMatrixEngine(w1, batch);
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
  if (RunsOnSimdTeam(w1, batch)) {
    ExpertFfnSimd(w1, w3, w2, x, batch, route_weights, limit, y);
  } else if (RunsOnMatrixEngine(w1, batch)) {
    ExpertFfnWith(MatMul, w1, w3, w2, x, batch, route_weights, limit, y);
  } else {
    ExpertFfnReference(w1, w3, w2, x, batch, route_weights, limit, y);
  }
}

void ExpertFfnSimd(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                   int64_t batch, const float* route_weights, float limit, float* y) {
  RunInOneTeam({{&w1, &w3, &w2, x, batch, route_weights, y}}, limit);
}

void ExpertFfnGroup(const std::vector<ExpertFfnJob>& jobs, float limit) {
  std::vector<ExpertFfnJob> together;
  for (const ExpertFfnJob& job : jobs) {
    if (RunsOnSimdTeam(*job.w1, job.batch)) {
      together.push_back(job);
    } else {
      ExpertFfn(*job.w1, *job.w3, *job.w2, job.x, job.batch, job.route_weights, limit, job.y);
    }
  }
  RunInOneTeam(together, limit);
}

void ExpertFfnReference(const WeightMatrix& w1, const WeightMatrix& w3, const WeightMatrix& w2, const float* x,
                        int64_t batch, const float* route_weights, float limit, float* y) {
  ExpertFfnWith(MatMulReference, w1, w3, w2, x, batch, route_weights, limit, y);
}

}  // namespace dsv4
