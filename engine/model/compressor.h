// Gated pooling of token projections into compressed rows (spec §4.7), one
// token at a time: prefill, chunks and decode all take this path, which is
// exactly the reference's decode-state update.
#pragma once

#include <cstdint>

#include "engine/model/model_weights.h"
#include "engine/model/sequence_state.h"

namespace dsv4 {

// Feeds the projections kv, gate ([coff*dim] each) of the token at `position`.
// When that token completes row position / ratio, writes the pooled row
// ([dim], before normalization) to `pooled` and returns true.
bool CompressorStep(const CompressorWeights& w, CompressorState& state, int64_t position, const float* kv,
                    const float* gate, float* pooled);

}  // namespace dsv4
