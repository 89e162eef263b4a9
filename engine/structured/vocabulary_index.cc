#include "engine/structured/vocabulary_index.h"

#include <algorithm>
#include <limits>

#include "engine/structured/grammar.h"
#include "engine/structured/grammar_matcher.h"
#include "engine/text/chat_format.h"

namespace dsv4 {

TokenTrie TokenTrie::Build(std::vector<Entry> entries) {
  // Sorted entries share each prefix with their neighbours, so the trie is
  // built in one pass keeping the path to the previous entry.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.bytes < b.bytes || (a.bytes == b.bytes && a.token < b.token); });
  TokenTrie trie;
  trie.nodes.emplace_back();
  std::vector<int32_t> path = {0};       // path[d]: the node at depth d
  std::vector<int32_t> last_child = {-1};  // per depth on the path: its newest child
  std::string previous;
  for (const Entry& e : entries) {
    size_t common = 0;
    while (common < previous.size() && common < e.bytes.size() && previous[common] == e.bytes[common]) ++common;
    path.resize(common + 1);
    last_child.resize(common + 1);
    for (size_t d = common; d < e.bytes.size(); ++d) {
      TokenTrie::Node node;
      node.byte = static_cast<uint8_t>(e.bytes[d]);
      const int32_t id = static_cast<int32_t>(trie.nodes.size());
      trie.nodes.push_back(node);
      if (last_child[d] < 0) {
        trie.nodes[path[d]].first_child = id;
      } else {
        trie.nodes[last_child[d]].next_sibling = id;
      }
      last_child[d] = id;
      path.push_back(id);
      last_child.push_back(-1);
    }
    // Entries with equal bytes arrive together, so a node's tokens are one run.
    TokenTrie::Node& node = trie.nodes[path.back()];
    if (node.tokens_end == node.tokens_begin) node.tokens_begin = node.tokens_end = static_cast<int32_t>(trie.tokens.size());
    trie.tokens.push_back(e.token);
    trie.values.push_back(e.value);
    node.tokens_end = static_cast<int32_t>(trie.tokens.size());
    previous = e.bytes;
  }
  return trie;
}

VocabularyIndex::VocabularyIndex(const Tokenizer& tokenizer, int64_t vocab_size) : vocab_size_(vocab_size) {
  bytes_.resize(vocab_size);
  std::vector<bool> added(vocab_size, false);
  for (const int32_t id : tokenizer.AddedTokenIds()) {
    if (id < vocab_size) added[id] = true;
  }
  std::vector<TokenTrie::Entry> entries;
  for (int32_t id = 0; id < vocab_size; ++id) {
    if (added[id] || !tokenizer.HasToken(id)) continue;
    bytes_[id] = tokenizer.TokenBytes(id);
    if (!bytes_[id].empty()) entries.push_back({bytes_[id], id, 0});
  }
  trie_ = TokenTrie::Build(std::move(entries));
  eos_ = tokenizer.TokenId(chat_tokens::kEos);
  dsml_ = tokenizer.TokenId(chat_tokens::kDsml);
  json_ = BuildStringTokens(StringForm::kJson);
  raw_ = BuildStringTokens(StringForm::kRaw);
}

VocabularyIndex::StringTokens VocabularyIndex::BuildStringTokens(StringForm form) const {
  // Each token read from a character boundary of an unbounded string body:
  // the body's reading is deterministic there, so whether a token stays in
  // the string, closes it or breaks it does not depend on the grammar.
  GrammarRule body;
  body.kind = GrammarRule::Kind::kStringBody;
  body.form = form;
  body.max = std::numeric_limits<int64_t>::max();  // bounded, so characters are counted
  std::vector<int64_t> chars_staying(vocab_size_, -1);
  std::vector<TokenTrie::Entry> closing;
  int64_t most = 0;
  for (int32_t id = 0; id < vocab_size_; ++id) {
    const std::string& b = bytes_[id];
    if (b.empty()) continue;
    MatchFrame f{0, 0, 0};
    size_t i = 0;
    for (; i < b.size(); ++i) {
      if (f.state == 0 && form == StringForm::kJson && b[i] == '"') break;
      if (!StringBodyStep(body, f, static_cast<uint8_t>(b[i]))) break;
    }
    if (i == b.size()) {
      chars_staying[id] = f.count;
      most = std::max(most, f.count);
    } else if (f.state == 0 && b[i] == '"' && form == StringForm::kJson) {
      closing.push_back({b.substr(i), id, static_cast<int32_t>(f.count)});
    }
  }
  StringTokens out;
  out.staying.assign(most + 1, EmptyMask());
  for (int32_t id = 0; id < vocab_size_; ++id) {
    if (chars_staying[id] >= 0) AllowToken(out.staying[chars_staying[id]], id);
  }
  for (size_t c = 1; c < out.staying.size(); ++c) {
    for (size_t w = 0; w < out.staying[c].size(); ++w) out.staying[c][w] |= out.staying[c - 1][w];
  }
  out.closing = TokenTrie::Build(std::move(closing));
  return out;
}

}  // namespace dsv4
