#include "engine/model/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "loader/error.h"
#include "simd/expert_ffn.h"
#include "simd/matmul.h"
#include "simd/ops.h"

namespace dsv4 {
namespace {

// Experts with at most this many rows are small products (a few weight
// bytes per multiply-add): they run in groups on one team, which saves the
// fork and barriers of each (seven experts per layer at decode). A group
// stops at kGroupRows rows in all, so that its buffers (some 48 KB per row
// at Flash's sizes) stay small.
constexpr int64_t kFewRows = 16;
constexpr int64_t kGroupRows = 64;

// softplus with PyTorch's threshold of 20.
float Softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

}  // namespace

Moe::Moe(const ModelConfig& config, const MoeWeights& weights, int64_t block, ExpertSource& experts)
    : config_(config), w_(weights), block_(block), experts_(experts) {}

std::vector<Routing> Moe::Route(const float* input, const int32_t* tokens, int64_t rows) const {
  const int64_t experts = config_.n_routed_experts, k = config_.num_experts_per_tok;
  std::vector<float> logits(rows * experts);
  MatMul(w_.gate, input, rows, logits.data());
  std::vector<Routing> routing(rows);
  std::vector<float> biased(experts);
  for (int64_t t = 0; t < rows; ++t) {
    float* score = logits.data() + t * experts;
    for (int64_t e = 0; e < experts; ++e) score[e] = std::sqrt(Softplus(score[e]));
    Routing& r = routing[t];
    if (w_.tid2eid) {
      for (int64_t i = 0; i < k; ++i) {
        int64_t id;
        std::memcpy(&id, w_.tid2eid + (static_cast<int64_t>(tokens[t]) * k + i) * 8, 8);
        if (id < 0 || id >= experts) {
          throw Error("tensor ffn.gate.tid2eid: entry for token " + std::to_string(tokens[t]) + " names expert " +
                      std::to_string(id) + ", outside [0, " + std::to_string(experts) + ")");
        }
        r.experts.push_back(static_cast<int32_t>(id));
      }
    } else {
      // The bias steers selection only; the weights use the unbiased scores.
      for (int64_t e = 0; e < experts; ++e) biased[e] = score[e] + w_.bias[e];
      r.experts = ops::TopK(biased.data(), experts, k);
    }
    float sum = 0;
    for (int32_t e : r.experts) sum += score[e];
    for (int32_t e : r.experts) {
      float weight = score[e];
      if (config_.norm_topk_prob) weight /= sum;
      r.weights.push_back(weight * static_cast<float>(config_.routed_scaling_factor));
    }
  }
  return routing;
}

void Moe::AddExpertOutput(const float* y, const std::vector<int64_t>& members, float* out) const {
  const int64_t hidden = config_.hidden_size;
  for (size_t i = 0; i < members.size(); ++i) {
    float* o = out + members[i] * hidden;
    for (int64_t c = 0; c < hidden; ++c) o[c] += y[i * hidden + c];
  }
}

void Moe::RunGroup(const std::vector<int32_t>& group, const float* input,
                   const std::vector<std::vector<int64_t>>& members,
                   const std::vector<std::vector<float>>& route_weights, float* out) const {
  const int64_t hidden = config_.hidden_size;
  const size_t n = group.size();
  std::vector<ExpertHandle> handles;
  handles.reserve(n);  // the jobs point into the handles' weights
  std::vector<std::vector<float>> x(n), y(n);
  std::vector<ExpertFfnJob> jobs;
  for (size_t g = 0; g < n; ++g) {
    const int32_t e = group[g];
    const ExpertWeights* weights = &w_.shared;
    if (e != config_.n_routed_experts) {
      handles.push_back(experts_.Acquire(block_, e));
      weights = &handles.back().weights;
    }
    const int64_t m = static_cast<int64_t>(members[e].size());
    x[g].resize(m * hidden);
    for (int64_t i = 0; i < m; ++i) {
      std::copy(input + members[e][i] * hidden, input + (members[e][i] + 1) * hidden, x[g].begin() + i * hidden);
    }
    y[g].resize(m * hidden);
    jobs.push_back({&weights->w1, &weights->w3, &weights->w2, x[g].data(), m, route_weights[e].data(), y[g].data()});
  }
  ExpertFfnGroup(jobs, static_cast<float>(config_.swiglu_limit));
  for (size_t g = 0; g < n; ++g) AddExpertOutput(y[g].data(), members[group[g]], out);
}

void Moe::Forward(const float* input, const int32_t* tokens, int64_t rows, float* out) const {
  const int64_t hidden = config_.hidden_size;
  const std::vector<Routing> routing = Route(input, tokens, rows);
  // Gather the rows of each expert so that one weight pass serves them all;
  // a row routed twice to one expert (a repeated hash entry) counts twice.
  // The last place stands for the shared expert, which takes every row.
  const int32_t shared = static_cast<int32_t>(config_.n_routed_experts);
  std::vector<std::vector<int64_t>> members(shared + 1);
  std::vector<std::vector<float>> weights(shared + 1);
  for (int64_t t = 0; t < rows; ++t) {
    for (size_t i = 0; i < routing[t].experts.size(); ++i) {
      members[routing[t].experts[i]].push_back(t);
      weights[routing[t].experts[i]].push_back(routing[t].weights[i]);
    }
  }
  std::vector<int32_t> used;
  for (int32_t e = 0; e < shared; ++e) {
    if (!members[e].empty()) used.push_back(e);
  }
  experts_.Prefetch(block_, used);
  if (w_.has_shared) {
    for (int64_t t = 0; t < rows; ++t) members[shared].push_back(t);
    weights[shared].assign(rows, 1.0f);
    used.push_back(shared);
  }
  std::fill(out, out + rows * hidden, 0.0f);
  // Consecutive experts with few rows run as one group, as many as the
  // store lets one hold at once; any other expert runs alone on the whole
  // team. The outputs are added in `used` order either way, so a row's sum
  // does not depend on which experts ran together.
  const int64_t most_held = std::max<int64_t>(1, experts_.MaxHeld());
  std::vector<int32_t> group;
  int64_t group_rows = 0;
  for (const int32_t e : used) {
    const int64_t m = static_cast<int64_t>(members[e].size());
    const bool few = m <= kFewRows;
    if (!group.empty() &&
        (!few || group_rows + m > kGroupRows || static_cast<int64_t>(group.size()) >= most_held)) {
      RunGroup(group, input, members, weights, out);
      group.clear();
      group_rows = 0;
    }
    group.push_back(e);
    group_rows += m;
    if (!few) {
      RunGroup(group, input, members, weights, out);
      group.clear();
      group_rows = 0;
    }
  }
  if (!group.empty()) RunGroup(group, input, members, weights, out);
}

}  // namespace dsv4
