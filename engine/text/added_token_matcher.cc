#include "engine/text/added_token_matcher.h"

namespace dsv4 {

void AddedTokenMatcher::Add(std::string_view text, int32_t id) {
  int32_t node = 0;
  for (const char c : text) {
    const uint8_t byte = static_cast<uint8_t>(c);
    int32_t child = -1;
    for (const auto& [b, index] : nodes_[node].next) {
      if (b == byte) child = index;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes_.size());
      nodes_[node].next.emplace_back(byte, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  nodes_[node].id = id;
  first_byte_[static_cast<uint8_t>(text[0])] = true;
}

int32_t AddedTokenMatcher::LongestAt(std::string_view text, size_t pos, size_t& length) const {
  int32_t node = 0, best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t child = -1;
    for (const auto& [b, index] : nodes_[node].next) {
      if (b == static_cast<uint8_t>(text[i])) {
        child = index;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (nodes_[node].id >= 0) {
      best = nodes_[node].id;
      length = i + 1 - pos;
    }
  }
  return best;
}

}  // namespace dsv4
