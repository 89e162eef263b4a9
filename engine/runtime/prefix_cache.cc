#include "engine/runtime/prefix_cache.h"

#include <algorithm>

namespace dsv4 {
namespace {

bool IsPrefix(const std::vector<int32_t>& prefix, const std::vector<int32_t>& tokens) {
  return prefix.size() <= tokens.size() && std::equal(prefix.begin(), prefix.end(), tokens.begin());
}

// Bytes an entry accounts for: its state and its key.
int64_t EntryBytes(const std::vector<int32_t>& tokens, const SequenceState& state) {
  return state.ram_bytes() + state.kv_spilled_bytes() + static_cast<int64_t>(tokens.size() * sizeof(int32_t));
}

}  // namespace

std::list<PrefixCache::Entry>::const_iterator PrefixCache::Find(const std::vector<int32_t>& tokens,
                                                               int64_t* length) const {
  *length = 0;
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    const int64_t n = static_cast<int64_t>(it->tokens.size());
    if (n > *length && n < static_cast<int64_t>(tokens.size()) && IsPrefix(it->tokens, tokens)) {
      *length = n;
      best = it;
    }
  }
  return best;
}

const SequenceState* PrefixCache::Longest(const std::vector<int32_t>& tokens, int64_t* length) {
  const auto best = Find(tokens, length);
  if (best == entries_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, best);
  return entries_.front().state.get();
}

int64_t PrefixCache::LongestLength(const std::vector<int32_t>& tokens) const {
  int64_t length = 0;
  Find(tokens, &length);
  return length;
}

bool PrefixCache::Contains(const std::vector<int32_t>& tokens) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.tokens == tokens; });
}

void PrefixCache::Insert(const std::vector<int32_t>& tokens, const SequenceState& state, const KvOptions& kv) {
  if (tokens.empty() || Contains(tokens)) return;
  if (EntryBytes(tokens, state) > budget_bytes_) return;
  auto copy = std::make_unique<SequenceState>(state.config(), state.numerics(), kv);
  copy->CopyFrom(state);
  const int64_t bytes = EntryBytes(tokens, *copy);
  entries_.push_front({tokens, std::move(copy), bytes});
  bytes_ += bytes;
  while (bytes_ > budget_bytes_ && !entries_.empty()) {
    bytes_ -= entries_.back().bytes;
    entries_.pop_back();
  }
}

}  // namespace dsv4
