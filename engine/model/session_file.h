// Saving and restoring a sequence's complete state (spec §5.3) so that a
// conversation or a long document can continue after a restart, and so that
// a shared prompt prefix is computed once. Files are versioned, checksummed
// and tied to the model (config + tensor index) and the numerics mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/sequence_state.h"
#include "loader/checkpoint.h"

namespace dsv4 {

// What a session holds besides the layer states.
struct SessionContents {
  std::vector<int32_t> tokens;    // every token fed so far (for prefix matching)
  std::vector<float> last_logits; // logits after the last token (empty if none)
};

// A hash of the config and the tensor index (names, dtypes, shapes, offsets,
// and the first bytes of every tensor): two checkpoints that differ in
// either get different identities.
uint64_t ModelIdentity(const Checkpoint& checkpoint);

// Writes beside `path` and renames, so a failure never leaves a torn file.
void SaveSession(const std::string& path, const SequenceState& state, const SessionContents& contents,
                 uint64_t model_identity);

// Restores into `state`, which must be fresh (no tokens yet). Throws
// dsv4::Error for a truncated or corrupted file, another model, another
// numerics mode or KV layout.
SessionContents LoadSession(const std::string& path, SequenceState& state, uint64_t model_identity);

// The whole file matches its checksum (a prefix search reads only the
// tokens, so it checks the file it chose before trusting it).
bool SessionChecksumHolds(const std::string& path);

// Only the token list of a session of this model and numerics, or an empty
// list if the file is not one (used to search a directory for a prefix).
std::vector<int32_t> PeekSessionTokens(const std::string& path, uint64_t model_identity, Numerics numerics);

}  // namespace dsv4
