// Picks the next token from a row of logits.
#pragma once

#include <cstdint>

namespace dsv4 {

// Greedy decoding: the highest logit, lowest id on ties.
int32_t ArgMax(const float* logits, int64_t vocab);

}  // namespace dsv4
