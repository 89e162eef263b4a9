// The DeepSeek-V4 forward pass (spec §4). One call takes a batch of token
// rows, each with its own sequence, position and state: prefill chunks,
// single-token decode and many-sequence batches all take this one path.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/attention.h"
#include "engine/model/expert_source.h"
#include "engine/model/model_weights.h"
#include "engine/model/moe.h"
#include "engine/model/numerics.h"
#include "engine/model/sequence_state.h"
#include "loader/checkpoint.h"
#include "simd/matmul.h"

namespace dsv4 {

struct TokenRow {
  int32_t token;
  int64_t position;        // must equal the sequence's length when the row runs
  SequenceState* state;
};

class Model {
 public:
  // experts: where routed experts come from; null = the mapped checkpoint.
  Model(const Checkpoint& checkpoint, Numerics numerics, ExpertSource* experts = nullptr);

  const ModelConfig& config() const { return config_; }
  Numerics numerics() const { return numerics_; }

  // Runs rows through every main layer. Rows of one sequence appear in
  // increasing consecutive positions. Writes the logits of the rows listed
  // in `logit_rows` to logits[i][vocab]. If `final_streams` is given, it
  // receives every row's residual streams after the last layer
  // [rows][hc][hidden] (the MTP block's input).
  void Forward(const std::vector<TokenRow>& rows, const std::vector<int64_t>& logit_rows, float* logits,
               std::vector<float>* final_streams = nullptr) const;

  // The first MTP block: row t takes the main model's final streams of some
  // position i (streams[t]) and the token at i + 1 (rows[t].token), and
  // predicts the token at i + 2. rows[t].position counts the MTP block's own
  // positions. Writes the logits of the rows listed in `logit_rows` to
  // logits[i][vocab], and, if `block_streams` is given, the block's output
  // streams of every row (before its HC head) to it: [rows][hc][hidden],
  // what a chained draft takes in place of the main model's streams.
  void ForwardMtp(const std::vector<TokenRow>& rows, const float* streams, const std::vector<int64_t>& logit_rows,
                  float* logits, std::vector<float>* block_streams = nullptr) const;

 private:
  struct Block {
    std::unique_ptr<Attention> attention;
    std::unique_ptr<Moe> moe;
  };

  void CheckRows(const std::vector<TokenRow>& rows, int64_t block) const;
  // What the weight GEMMs of a forward call may round to (Numerics::kFast).
  MatMulPrecision GemmPrecision() const;
  // One transformer block over streams [rows][hc][hidden], in place.
  void RunBlock(int64_t block, const std::vector<TokenRow>& rows, std::vector<float>& streams) const;
  // Final collapse, norm and LM head for the selected rows.
  void Logits(const HyperConnectionWeights& hc_head, const std::vector<float>& norm, const float* streams,
              const std::vector<int64_t>& selected, float* logits) const;

  // The experts of every hash-routed layer follow from the token ids alone.
  void PrefetchHashExperts(const std::vector<TokenRow>& rows) const;

  ModelConfig config_;
  Numerics numerics_;
  ModelWeights weights_;
  MappedExperts mapped_experts_;
  ExpertSource* experts_;
  std::vector<Block> blocks_;
};

}  // namespace dsv4
