// Finds added tokens ("<｜User｜>", "<think>", ...) in raw text the way the
// Hugging Face library does before pre-tokenization: leftmost-longest over all
// their strings (its Aho-Corasick MatchKind::LeftmostLongest), so the earliest
// match wins and, among matches starting there, the longest.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace dsv4 {

class AddedTokenMatcher {
 public:
  // `text` must not be empty; a text added twice keeps the last id.
  void Add(std::string_view text, int32_t id);
  bool empty() const { return nodes_.size() <= 1; }

  // Splits `text` into gaps and tokens: calls gap(std::string_view) for every
  // non-empty stretch between matches and token(int32_t id) for every match.
  template <typename GapFn, typename TokenFn>
  void Split(std::string_view text, GapFn&& gap, TokenFn&& token) const {
    size_t done = 0;
    for (size_t pos = 0; pos < text.size(); ++pos) {
      if (!first_byte_[static_cast<unsigned char>(text[pos])]) continue;
      size_t length;
      const int32_t id = LongestAt(text, pos, length);
      if (id < 0) continue;
      if (pos > done) gap(text.substr(done, pos - done));
      token(id);
      done = pos + length;
      pos = done - 1;
    }
    if (done < text.size()) gap(text.substr(done));
  }

 private:
  struct Node {
    int32_t id = -1;                                  // token ending here, or -1
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> child node
  };
  int32_t LongestAt(std::string_view text, size_t pos, size_t& length) const;

  std::vector<Node> nodes_{1};
  std::array<bool, 256> first_byte_{};
};

}  // namespace dsv4
