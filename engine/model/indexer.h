// The lightning indexer of CSA layers (spec §4.8): scores every available
// ratio-4 compressed row against the query and picks the top-k rows that the
// attention reads.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/model_weights.h"
#include "engine/model/numerics.h"
#include "engine/model/rope.h"
#include "engine/model/sequence_state.h"

namespace dsv4 {

class Indexer {
 public:
  Indexer(const ModelConfig& config, const IndexerWeights& weights, const Rope& rope, Numerics numerics);

  // Batched projections of a call's rows; row t is at positions[t].
  struct Projections {
    // Rotated queries [rows][heads][dim]: f32 in smooth numerics; in default
    // numerics Hadamard-rotated and FP4-encoded like the indexer rows
    // (codes [rows][heads][dim/2], scales [rows][heads][dim/32]).
    std::vector<float> query;
    std::vector<uint8_t> query_codes, query_scales;
    std::vector<float> weights;  // [rows][heads], already scaled
    std::vector<float> kv, gate; // [rows][2*dim] compressor inputs
  };
  Projections Project(const float* normed_input, const float* q_lora, const int64_t* positions,
                      int64_t rows) const;

  // Feeds row t (at `position`) to the indexer compressor, appending the
  // finished indexer row when the position completes one.
  void AdvanceRows(const Projections& p, int64_t t, int64_t position, LayerState& state) const;

  // The compressed rows each query attends to. `rows` are consecutive
  // positions of one sequence whose indexer rows are all appended already;
  // query i sees only the rows that existed at its position.
  std::vector<std::vector<int32_t>> Select(const Projections& p, const std::vector<int64_t>& rows,
                                           const std::vector<int64_t>& positions, const LayerState& state) const;

 private:
  // Default numerics: scores of queries rows[begin, begin + group) against
  // the FP4 key rows with the exact kernel (simd/indexer_scores.h);
  // scores [group][keys.rows].
  void ScoreFp4(const Projections& p, const std::vector<int64_t>& rows, size_t begin, size_t group,
                const WeightMatrix& keys, const std::vector<int64_t>& visible, std::vector<float>& scores) const;

  const ModelConfig& config_;
  const IndexerWeights& w_;
  const Rope& rope_;
  Numerics numerics_;
};

}  // namespace dsv4
