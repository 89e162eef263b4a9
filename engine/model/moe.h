// The mixture-of-experts feed-forward of one layer (spec §4.9): a router
// (token-id hash table in the first layers, biased sqrt-softplus top-k
// elsewhere), FP4 routed experts with clamped SwiGLU, and the shared expert.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/expert_source.h"
#include "engine/model/model_weights.h"

namespace dsv4 {

// The experts one token uses and their weights, in routing order.
struct Routing {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

class Moe {
 public:
  Moe(const ModelConfig& config, const MoeWeights& weights, int64_t block, ExpertSource& experts);

  // input, out: [rows][hidden]; tokens: the token id of each row.
  void Forward(const float* input, const int32_t* tokens, int64_t rows, float* out) const;
  // Routing of each row (exposed for tests and tracing).
  std::vector<Routing> Route(const float* input, const int32_t* tokens, int64_t rows) const;

 private:
  // out[row] += y's row, over `members` rows.
  void AddExpertOutput(const float* y, const std::vector<int64_t>& members, float* out) const;
  // The experts of `group` (n_routed_experts stands for the shared expert)
  // over their `members` rows of input, times their route weights, in one
  // ExpertFfnGroup; then AddExpertOutput of each, in the group's order.
  void RunGroup(const std::vector<int32_t>& group, const float* input,
                const std::vector<std::vector<int64_t>>& members,
                const std::vector<std::vector<float>>& route_weights, float* out) const;

  const ModelConfig& config_;
  const MoeWeights& w_;
  int64_t block_;
  ExpertSource& experts_;
};

}  // namespace dsv4
