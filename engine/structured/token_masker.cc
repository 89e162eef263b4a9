#include "engine/structured/token_masker.h"

#include <algorithm>
#include <cstring>

namespace dsv4 {
namespace {

std::string CacheKey(const MatchSet& set) {
  std::string key(1, set.accepting ? 'a' : 'n');
  for (const MatchStack& s : set.stacks) {
    const uint32_t depth = static_cast<uint32_t>(s.size());
    key.append(reinterpret_cast<const char*>(&depth), sizeof(depth));
    key.append(reinterpret_cast<const char*>(s.data()), s.size() * sizeof(MatchFrame));
  }
  return key;
}

}  // namespace

TokenMasker::TokenMasker(const VocabularyIndex& vocabulary, const GrammarMatcher& matcher)
    : vocabulary_(vocabulary), matcher_(matcher) {}

template <typename Keep>
void TokenMasker::Walk(const TokenTrie& trie, int32_t node, const MatchSet& set, const Keep& keep,
                       TokenMask& out) const {
  for (int32_t child = trie.nodes[node].first_child; child >= 0; child = trie.nodes[child].next_sibling) {
    const TokenTrie::Node& n = trie.nodes[child];
    const MatchSet next = matcher_.Step(set, n.byte);
    if (next.dead()) continue;
    for (int32_t i = n.tokens_begin; i < n.tokens_end; ++i) {
      if (keep(trie.values[i])) AllowToken(out, trie.tokens[i]);
    }
    if (n.first_child >= 0 && !next.stacks.empty()) Walk(trie, child, next, keep, out);
  }
}

void TokenMasker::Compute(const MatchSet& set, TokenMask& out, bool& cacheable) const {
  const auto any = [](int32_t) { return true; };
  const std::vector<GrammarRule>& rules = matcher_.grammar().rules();
  // A string body between characters: the tokens that stay in it come from
  // the precomputed table, those that close it are read on from its end;
  // every other way of reading the set walks the whole trie.
  MatchSet others;
  for (const MatchStack& s : set.stacks) {
    if (!matcher_.AtStringBoundary(s)) {
      others.stacks.push_back(s);
      continue;
    }
    cacheable = false;
    const GrammarRule& rule = rules[s.back().rule];
    const int64_t count = s.back().count;
    const VocabularyIndex::StringTokens& table = vocabulary_.string_tokens(rule.form);
    const int64_t room = rule.max < 0 ? std::numeric_limits<int64_t>::max() : rule.max - count;
    if (room > 0) {
      const TokenMask& staying = table.StayingUpTo(room);
      for (size_t w = 0; w < out.size(); ++w) out[w] |= staying[w];
    }
    if (rule.form == StringForm::kJson) {
      const MatchSet after = matcher_.AfterString(s);
      const auto fits = [&](int32_t chars) {
        return count + chars >= rule.min && (rule.max < 0 || count + chars <= rule.max);
      };
      if (!after.stacks.empty()) Walk(table.closing, 0, after, fits, out);
    }
  }
  if (!others.stacks.empty()) Walk(vocabulary_.trie(), 0, others, any, out);
  if (vocabulary_.dsml_token() && !matcher_.Step(set, kDsmlSymbol).dead()) AllowToken(out, *vocabulary_.dsml_token());
  if (vocabulary_.eos_token() && set.accepting) AllowToken(out, *vocabulary_.eos_token());
}

void TokenMasker::Allowed(const MatchSet& set, TokenMask& out) const {
  const std::string key = CacheKey(set);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto hit = cache_.find(key);
    if (hit != cache_.end()) {
      recent_.splice(recent_.begin(), recent_, hit->second.second);
      out = hit->second.first;
      return;
    }
  }
  out.assign((vocabulary_.vocab_size() + 63) / 64, 0);
  bool cacheable = true;
  Compute(set, out, cacheable);
  if (!cacheable) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (cache_.count(key)) return;
  recent_.push_front(key);
  cache_.emplace(key, std::make_pair(out, recent_.begin()));
  if (cache_.size() > kCacheEntries) {
    cache_.erase(recent_.back());
    recent_.pop_back();
  }
}

}  // namespace dsv4
