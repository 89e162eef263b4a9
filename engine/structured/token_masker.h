// Which tokens may come next: exactly those whose bytes keep the output a
// valid prefix of the grammar (a token may span several JSON tokens or end
// inside a UTF-8 character), ｜DSML｜ where the grammar reads that symbol,
// and the end of sequence where the output is complete.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/structured/grammar_matcher.h"
#include "engine/structured/vocabulary_index.h"

namespace dsv4 {

class TokenMasker {
 public:
  // Both must outlive the masker.
  TokenMasker(const VocabularyIndex& vocabulary, const GrammarMatcher& matcher);

  // out: vocabulary-wide, overwritten. Thread-safe.
  void Allowed(const MatchSet& set, TokenMask& out) const;

 private:
  // Walks `trie` below `node` from `set`, allowing the tokens of every node
  // it reaches whose value passes `keep`.
  template <typename Keep>
  void Walk(const TokenTrie& trie, int32_t node, const MatchSet& set, const Keep& keep, TokenMask& out) const;
  void Compute(const MatchSet& set, TokenMask& out, bool& cacheable) const;

  const VocabularyIndex& vocabulary_;
  const GrammarMatcher& matcher_;

  // Masks of recent sets that took a walk of the whole trie (structural
  // positions recur: every array item, every property of a map).
  static constexpr size_t kCacheEntries = 256;
  mutable std::mutex mutex_;
  mutable std::list<std::string> recent_;  // most recent first
  mutable std::unordered_map<std::string, std::pair<TokenMask, std::list<std::string>::iterator>> cache_;
};

}  // namespace dsv4
