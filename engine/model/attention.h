// DeepSeek-V4 attention of one layer (spec §4.5): shared K=V row per token,
// a sliding window plus compressed rows (all of them for HCA, the indexer's
// top-k for CSA), an attention sink, inverse RoPE and grouped output.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/indexer.h"
#include "engine/model/model_weights.h"
#include "engine/model/numerics.h"
#include "engine/model/rope.h"
#include "engine/model/sequence_state.h"

namespace dsv4 {

// One token row as a layer sees it.
struct LayerRow {
  int64_t position;
  LayerState* state;
};

class Attention {
 public:
  Attention(const ModelConfig& config, const AttentionWeights& weights, int64_t layer, Numerics numerics);

  // input: [rows][hidden] normalized sublayer input; out: [rows][hidden].
  // Rows of one sequence must come in increasing consecutive positions.
  void Forward(const float* input, const std::vector<LayerRow>& rows, float* out) const;

 private:
  // Appends the finished compressed row if `position` completes one.
  void AdvanceCompressor(const float* kv, const float* gate, int64_t position, LayerState& state) const;
  // Attention of one query row over the window and `num_compressed` decoded
  // compressed rows; writes [heads][head_dim]. `angles` are the row's RoPE
  // angles (the output is rotated back with them).
  void Attend(const float* q, int64_t position, const Rope::Angles& angles, const LayerState& state,
              const float* compressed, int64_t num_compressed, float* out) const;

  const ModelConfig& config_;
  const AttentionWeights& w_;
  Numerics numerics_;
  Rope rope_;
  std::unique_ptr<Indexer> indexer_;
};

}  // namespace dsv4
