// Restorable sequence states keyed by the tokens that produced them, so a
// prompt that begins like an earlier one (a shared system prompt, the turns
// before the last in a chat) starts from the longest cached prefix instead of
// recomputing it (contracts.md §6). A state cannot be cut back to an earlier
// position (its window ring and compressors have moved on), so the scheduler
// stores checkpoints at chosen positions; entries are evicted least recently
// used under a byte budget, and an evicted prefix is simply recomputed.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <vector>

#include "engine/model/sequence_state.h"

namespace dsv4 {

class PrefixCache {
 public:
  explicit PrefixCache(int64_t budget_bytes) : budget_bytes_(budget_bytes) {}

  // The longest cached entry whose tokens are a proper prefix of `tokens`
  // (at least one token is left to feed, which yields the next logits), or
  // null. Marks it most recently used.
  const SequenceState* Longest(const std::vector<int32_t>& tokens, int64_t* length);
  // The length Longest would find, without marking anything used.
  int64_t LongestLength(const std::vector<int32_t>& tokens) const;

  // Stores a copy of `state`, which has processed exactly `tokens`, unless
  // those tokens are cached already; then evicts down to the budget. A state
  // larger than the whole budget is not stored.
  void Insert(const std::vector<int32_t>& tokens, const SequenceState& state, const KvOptions& kv);
  bool Contains(const std::vector<int32_t>& tokens) const;

  int64_t entries() const { return static_cast<int64_t>(entries_.size()); }
  int64_t bytes() const { return bytes_; }
  int64_t budget_bytes() const { return budget_bytes_; }

 private:
  struct Entry {
    std::vector<int32_t> tokens;
    std::unique_ptr<SequenceState> state;
    int64_t bytes;
  };

  int64_t budget_bytes_;
  int64_t bytes_ = 0;
  std::list<Entry>::const_iterator Find(const std::vector<int32_t>& tokens, int64_t* length) const;

  std::list<Entry> entries_;  // most recently used first
};

}  // namespace dsv4
