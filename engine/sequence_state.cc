#include "engine/sequence_state.h"

#include <limits>

namespace dsv4 {

void CompressorState::Reset(int64_t ratio, int64_t dim, bool overlap) {
  const int64_t coff = overlap ? 2 : 1;
  kv.assign(coff * ratio * coff * dim, 0.0f);
  score.assign(coff * ratio * coff * dim, -std::numeric_limits<float>::infinity());
}

SequenceState::SequenceState(const ModelConfig& config) : config_(&config) { Reset(); }

void SequenceState::Reset() {
  const ModelConfig& c = *config_;
  layers_.assign(c.NumBlocks(), LayerState{});
  for (int64_t L = 0; L < c.NumBlocks(); ++L) {
    LayerState& s = layers_[L];
    s.window.assign(c.sliding_window * c.head_dim, 0.0f);
    const int64_t ratio = c.CompressRatio(L);
    if (ratio > 0) s.compressor.Reset(ratio, c.head_dim, ratio == 4);
    if (ratio == 4) s.indexer_compressor.Reset(4, c.index_head_dim, true);
  }
}

}  // namespace dsv4
