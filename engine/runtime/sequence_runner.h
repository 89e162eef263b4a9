// Drives one sequence through the model: prompt in chunks, then tokens one
// at a time, with progress on stderr for long prefills; saves and restores
// the sequence as a session file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/model/sequence_state.h"

namespace dsv4 {

class SequenceRunner {
 public:
  // chunk: rows per forward call while prefilling (0 = the whole prompt).
  SequenceRunner(const Model& model, int64_t chunk, const KvOptions& kv = {});

  // Feeds tokens at the next positions. Returns the logits of every fed
  // position ([tokens][vocab]) if all_positions, else of the last only.
  std::vector<float> Feed(const std::vector<int32_t>& tokens, bool all_positions);

  int64_t length() const { return state_.length(); }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Logits after the last token fed (or restored), empty before any.
  const std::vector<float>& last_logits() const { return last_logits_; }
  SequenceState& state() { return state_; }

  // Session files (engine/session_file.h); Load needs a fresh runner.
  void Save(const std::string& path, uint64_t model_identity) const;
  void Load(const std::string& path, uint64_t model_identity);

 private:
  const Model& model_;
  int64_t chunk_;
  SequenceState state_;
  std::vector<int32_t> tokens_;
  std::vector<float> last_logits_;
};

// The session in `dir` whose tokens are the longest prefix of `tokens` (at
// least one token) and whose checksum holds (damaged files are skipped with a
// line on stderr); empty if none. *matched gets the prefix length.
std::string FindPrefixSession(const std::string& dir, const std::vector<int32_t>& tokens, uint64_t model_identity,
                              Numerics numerics, int64_t* matched);
// Where a session of exactly `tokens` is kept in `dir`.
std::string PrefixSessionPath(const std::string& dir, const std::vector<int32_t>& tokens);

}  // namespace dsv4
