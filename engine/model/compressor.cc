#include "engine/model/compressor.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dsv4 {

bool CompressorStep(const CompressorWeights& w, CompressorState& state, int64_t position, const float* kv,
                    const float* gate, float* pooled) {
  const int64_t r = w.ratio, d = w.dim;
  const int64_t width = (w.overlap ? 2 : 1) * d;  // coff * d
  const int64_t phase = position % r;
  const int64_t slot = CompressorState::Slot(r, w.overlap, position);
  float* kv_slot = state.kv.data() + slot * width;
  float* score_slot = state.score.data() + slot * width;
  const float* ape = w.ape.data() + phase * width;
  for (int64_t c = 0; c < width; ++c) {
    kv_slot[c] = kv[c];
    score_slot[c] = gate[c] + ape[c];
  }
  if (phase != r - 1) return false;

  // Slots pooled per channel: with overlap, the previous window's first half
  // (slots 0..r) and the current window's second half (slots r..2r).
  const int64_t slots = w.overlap ? 2 * r : r;
  auto channel_offset = [&](int64_t s) { return w.overlap && s >= r ? d : 0; };
  for (int64_t c = 0; c < d; ++c) {
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < slots; ++s) {
      max_score = std::max(max_score, state.score[s * width + channel_offset(s) + c]);
    }
    double z = 0, sum = 0;
    for (int64_t s = 0; s < slots; ++s) {
      const int64_t i = s * width + channel_offset(s) + c;
      const double e = std::exp(static_cast<double>(state.score[i]) - max_score);
      z += e;
      sum += e * state.kv[i];
    }
    pooled[c] = static_cast<float>(sum / z);
  }
  if (w.overlap) {  // the current window becomes the previous one
    std::copy(state.kv.begin() + r * width, state.kv.end(), state.kv.begin());
    std::copy(state.score.begin() + r * width, state.score.end(), state.score.begin());
  }
  return true;
}

}  // namespace dsv4
