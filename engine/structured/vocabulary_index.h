// What constrained decoding precomputes once per tokenizer: a byte trie of
// the vocabulary, so one walk tests every token against a grammar state and
// prunes whole subtrees at the first byte that cannot come; and, for string
// bodies (where nearly every token fits), which tokens stay inside a string
// and how many characters they add, so those are allowed by a bitset lookup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/structured/grammar_expr.h"
#include "engine/text/tokenizer.h"

namespace dsv4 {

using TokenMask = std::vector<uint64_t>;  // bit i: token i is allowed

inline void AllowToken(TokenMask& mask, int32_t token) { mask[token >> 6] |= uint64_t{1} << (token & 63); }
inline bool TokenAllowed(const TokenMask& mask, int32_t token) { return (mask[token >> 6] >> (token & 63)) & 1; }

struct TokenTrie {
  struct Entry {
    std::string bytes;
    int32_t token = 0;
    int32_t value = 0;  // what the trie's owner attaches to the token
  };
  struct Node {
    int32_t first_child = -1, next_sibling = -1;
    int32_t tokens_begin = 0, tokens_end = 0;  // into `tokens` / `values`
    uint8_t byte = 0;
  };
  std::vector<Node> nodes;  // nodes[0]: the root (no byte)
  std::vector<int32_t> tokens;
  std::vector<int32_t> values;

  static TokenTrie Build(std::vector<Entry> entries);
};

class VocabularyIndex {
 public:
  // vocab_size: the model's (its logits' width); ids the tokenizer lacks and
  // added tokens are never allowed as text.
  VocabularyIndex(const Tokenizer& tokenizer, int64_t vocab_size);

  int64_t vocab_size() const { return vocab_size_; }
  TokenMask EmptyMask() const { return TokenMask((vocab_size_ + 63) / 64, 0); }
  const std::optional<int32_t>& eos_token() const { return eos_; }
  const std::optional<int32_t>& dsml_token() const { return dsml_; }
  const std::string& bytes(int32_t token) const { return bytes_[token]; }

  // Every ordinary token.
  const TokenTrie& trie() const { return trie_; }

  // Tokens read from between two characters of a string body of `form`
  // with no length limit: those that stay inside it, by characters begun.
  struct StringTokens {
    // staying[c]: the staying tokens that begin at most c characters;
    // the last entry holds them all.
    std::vector<TokenMask> staying;
    // kJson: tokens that close the string (an unescaped '"'), keyed by the
    // bytes from that quote on; value: characters before it.
    TokenTrie closing;
    const TokenMask& StayingUpTo(int64_t chars) const {
      return staying[static_cast<size_t>(std::min<int64_t>(chars, static_cast<int64_t>(staying.size()) - 1))];
    }
  };
  const StringTokens& string_tokens(StringForm form) const { return form == StringForm::kJson ? json_ : raw_; }

 private:
  StringTokens BuildStringTokens(StringForm form) const;

  int64_t vocab_size_;
  std::vector<std::string> bytes_;  // "" for ids never allowed as text
  std::optional<int32_t> eos_, dsml_;
  TokenTrie trie_;
  StringTokens json_, raw_;
};

}  // namespace dsv4
