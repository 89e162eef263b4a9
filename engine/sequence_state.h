// Everything one sequence carries from token to token (spec §5.3): per layer
// the sliding-window ring, the compressed rows, the indexer rows and the
// compressors' partial windows. Positions are absolute; each layer counts
// the tokens it has processed, so the MTP block keeps its own count.
#pragma once

#include <cstdint>
#include <vector>

#include "loader/config.h"

namespace dsv4 {

// The not-yet-pooled window(s) of a gated-pooling compressor (§4.7):
// [coff*ratio][coff*dim] projections and scores (scores include `ape`).
struct CompressorState {
  std::vector<float> kv;
  std::vector<float> score;

  void Reset(int64_t ratio, int64_t dim, bool overlap);
};

struct LayerState {
  int64_t length = 0;               // tokens this layer has processed
  std::vector<float> window;        // [sliding_window][head_dim]; position p at row p % window
  std::vector<float> compressed;    // [rows][head_dim]
  std::vector<float> indexer_rows;  // [rows][index_head_dim]
  CompressorState compressor;
  CompressorState indexer_compressor;
};

class SequenceState {
 public:
  explicit SequenceState(const ModelConfig& config);

  // Tokens processed by the main layers: the next token's position.
  int64_t length() const { return layers_.front().length; }
  LayerState& layer(int64_t block) { return layers_.at(block); }
  const LayerState& layer(int64_t block) const { return layers_.at(block); }
  // Back to an empty sequence.
  void Reset();

 private:
  const ModelConfig* config_;
  std::vector<LayerState> layers_;  // main layers, then MTP blocks
};

}  // namespace dsv4
