// Manifold-constrained hyper-connections (spec §4.2): the residual stream is
// hc_mult parallel streams; each sublayer reads a weighted collapse of them
// and writes back through a doubly-stochastic mixing matrix (Sinkhorn).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/model_weights.h"
#include "loader/config.h"

namespace dsv4 {

// Per-row mixing coefficients produced by HcPre for the matching HcPost.
struct HcMixing {
  std::vector<float> post;  // [rows][hc]
  std::vector<float> comb;  // [rows][hc][hc], comb[j][k]: stream j feeds output stream k
};

// streams: [rows][hc][hidden]. Writes the collapsed sublayer input
// [rows][hidden] and the mixing for HcPost.
void HcPre(const ModelConfig& config, const HyperConnectionWeights& w, const float* streams, int64_t rows,
           float* collapsed, HcMixing& mixing);

// streams <- post * sublayer_out + comb^T * streams, per row.
void HcPost(const ModelConfig& config, const HcMixing& mixing, const float* sublayer_out, int64_t rows,
            float* streams);

// The final collapse (no post, no Sinkhorn) into [rows][hidden].
void HcHead(const ModelConfig& config, const HyperConnectionWeights& w, const float* streams, int64_t rows,
            float* out);

}  // namespace dsv4
