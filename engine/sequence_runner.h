// Drives one sequence through the model: prompt in chunks, then tokens one
// at a time, with progress on stderr for long prefills.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model.h"
#include "engine/sequence_state.h"

namespace dsv4 {

class SequenceRunner {
 public:
  // chunk: rows per forward call while prefilling (0 = the whole prompt).
  SequenceRunner(const Model& model, int64_t chunk, const KvOptions& kv = {});

  // Feeds tokens at the next positions. Returns the logits of every fed
  // position ([tokens][vocab]) if all_positions, else of the last only.
  std::vector<float> Feed(const std::vector<int32_t>& tokens, bool all_positions);

  int64_t length() const { return state_.length(); }
  SequenceState& state() { return state_; }

 private:
  const Model& model_;
  int64_t chunk_;
  SequenceState state_;
};

}  // namespace dsv4
