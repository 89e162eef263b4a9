#include "engine/model/moe.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>

#include "loader/error.h"
#include "simd/expert_ffn.h"
#include "simd/matmul.h"
#include "simd/ops.h"

namespace dsv4 {
namespace {

// Routed experts with at most this many rows are small products: run one
// per thread, they skip the team's fork and barriers per expert (a dozen
// per layer at decode, where this made decode 7 % faster on flash4).
constexpr int64_t kSideBySideRows = 16;

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

void Moe::ExpertOutput(const ExpertWeights& expert, const float* input, const std::vector<int64_t>& members,
                       const std::vector<float>& route_weights, float* y) const {
  const int64_t hidden = config_.hidden_size, m = members.size();
  std::vector<float> x(m * hidden);
  for (int64_t i = 0; i < m; ++i) {
    std::copy(input + members[i] * hidden, input + (members[i] + 1) * hidden, x.begin() + i * hidden);
  }
  ExpertFfn(expert.w1, expert.w3, expert.w2, x.data(), m, route_weights.data(),
            static_cast<float>(config_.swiglu_limit), y);
}

void Moe::AddExpertOutput(const float* y, const std::vector<int64_t>& members, float* out) const {
  const int64_t hidden = config_.hidden_size;
  for (size_t i = 0; i < members.size(); ++i) {
    float* o = out + members[i] * hidden;
    for (int64_t c = 0; c < hidden; ++c) o[c] += y[i * hidden + c];
  }
}

void Moe::RunSideBySide(const std::vector<int32_t>& group, const float* input,
                        const std::vector<std::vector<int64_t>>& members,
                        const std::vector<std::vector<float>>& route_weights, float* out) const {
  const int64_t hidden = config_.hidden_size, n = static_cast<int64_t>(group.size());
  std::vector<ExpertHandle> handles;
  for (int32_t e : group) handles.push_back(experts_.Acquire(block_, e));
  std::vector<std::vector<float>> y(n);
  std::vector<std::exception_ptr> failed(n);
#pragma omp parallel for schedule(static, 1) num_threads(static_cast<int>(n))
  for (int64_t g = 0; g < n; ++g) {
    omp_set_num_threads(1);  // the expert's own regions run on this thread alone
    try {
      const int32_t e = group[g];
      y[g].resize(members[e].size() * hidden);
      ExpertOutput(handles[g].weights, input, members[e], route_weights[e], y[g].data());
    } catch (...) {
      failed[g] = std::current_exception();
    }
  }
  for (const std::exception_ptr& f : failed) {
    if (f) std::rethrow_exception(f);
  }
  // In the group's order: each row's sum is the one experts run one by one make.
  for (int64_t g = 0; g < n; ++g) AddExpertOutput(y[g].data(), members[group[g]], out);
}

void Moe::Forward(const float* input, const int32_t* tokens, int64_t rows, float* out) const {
  const int64_t hidden = config_.hidden_size;
  const std::vector<Routing> routing = Route(input, tokens, rows);
  // Gather the rows of each expert so that one weight pass serves them all;
  // a row routed twice to one expert (a repeated hash entry) counts twice.
  std::vector<std::vector<int64_t>> members(config_.n_routed_experts);
  std::vector<std::vector<float>> weights(config_.n_routed_experts);
  for (int64_t t = 0; t < rows; ++t) {
    for (size_t i = 0; i < routing[t].experts.size(); ++i) {
      members[routing[t].experts[i]].push_back(t);
      weights[routing[t].experts[i]].push_back(routing[t].weights[i]);
    }
  }
  std::vector<int32_t> used;
  for (int64_t e = 0; e < config_.n_routed_experts; ++e) {
    if (!members[e].empty()) used.push_back(static_cast<int32_t>(e));
  }
  experts_.Prefetch(block_, used);
  std::fill(out, out + rows * hidden, 0.0f);
  // A team's worth of consecutive experts with few rows each run side by
  // side, one per thread; any other expert runs on the whole team.
  const int64_t team = std::min<int64_t>(omp_get_max_threads(), experts_.MaxHeld());
  std::vector<float> y;
  for (size_t i = 0; i < used.size();) {
    size_t end = i;
    while (end < used.size() && static_cast<int64_t>(end - i) < team &&
           static_cast<int64_t>(members[used[end]].size()) <= kSideBySideRows) {
      ++end;
    }
    if (team >= 2 && static_cast<int64_t>(end - i) == team) {
      RunSideBySide(std::vector<int32_t>(used.begin() + i, used.begin() + end), input, members, weights, out);
      i = end;
      continue;
    }
    const int32_t e = used[i++];
    const ExpertHandle expert = experts_.Acquire(block_, e);
    y.resize(members[e].size() * hidden);
    ExpertOutput(expert.weights, input, members[e], weights[e], y.data());
    AddExpertOutput(y.data(), members[e], out);
  }
  if (w_.has_shared) {
    std::vector<int64_t> all(rows);
    for (int64_t t = 0; t < rows; ++t) all[t] = t;
    y.resize(rows * hidden);
    ExpertOutput(w_.shared, input, all, std::vector<float>(rows, 1.0f), y.data());
    AddExpertOutput(y.data(), all, out);
  }
}

}  // namespace dsv4
