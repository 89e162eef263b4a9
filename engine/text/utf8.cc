#include "engine/text/utf8.h"

#include <cstdint>
#include <cstring>

namespace dsv4 {

void AppendUtf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}
std::optional<Utf8Lead> Utf8LeadByte(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return Utf8Lead{2, 0x80, 0xBF};
  if (lead == 0xE0) return Utf8Lead{3, 0xA0, 0xBF};  // no overlongs
  if (lead == 0xED) return Utf8Lead{3, 0x80, 0x9F};  // no surrogates
  if (lead >= 0xE1 && lead <= 0xEF) return Utf8Lead{3, 0x80, 0xBF};
  if (lead == 0xF0) return Utf8Lead{4, 0x90, 0xBF};  // no overlongs
  if (lead == 0xF4) return Utf8Lead{4, 0x80, 0x8F};  // nothing past U+10FFFF
  if (lead >= 0xF1 && lead <= 0xF3) return Utf8Lead{4, 0x80, 0xBF};
  return std::nullopt;
}

namespace {

enum class Scan { kComplete, kTruncated, kInvalid };

// Reads the sequence at text[0]; `length` is its length when complete, the
// number of bytes present when truncated, or the maximal subpart (>= 1) to
// replace by one U+FFFD when invalid.
Scan ScanSequence(const unsigned char* text, size_t size, size_t& length) {
  const unsigned char lead = text[0];
  if (lead < 0x80) {
    length = 1;
    return Scan::kComplete;
  }
  const std::optional<Utf8Lead> l = Utf8LeadByte(lead);
  if (!l) {
    length = 1;
    return Scan::kInvalid;
  }
  const size_t needed = l->length;
  const unsigned char low = l->low, high = l->high;  // allowed range of the second byte
  for (size_t i = 1; i < needed; ++i) {
    if (i == size) {
      length = i;
      return Scan::kTruncated;
    }
    const unsigned char c = text[i];
    if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xBF)) {
      length = i;
      return Scan::kInvalid;
    }
  }
  length = needed;
  return Scan::kComplete;
}

// Skips ASCII eight bytes at a time: most text is mostly ASCII.
size_t SkipAscii(const unsigned char* text, size_t size, size_t i) {
  while (i + 8 <= size) {
    uint64_t word;
    std::memcpy(&word, text + i, 8);
    if (word & 0x8080808080808080ull) break;
    i += 8;
  }
  while (i < size && text[i] < 0x80) ++i;
  return i;
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  while (true) {
    i = SkipAscii(bytes, text.size(), i);
    if (i == text.size()) return std::nullopt;
    size_t length;
    if (ScanSequence(bytes + i, text.size() - i, length) != Scan::kComplete) return i;
    i += length;
  }
}

void AppendReplacingInvalidUtf8(std::string_view text, std::string& out) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0, run_start = 0;
  while (true) {
    i = SkipAscii(bytes, text.size(), i);
    if (i == text.size()) break;
    size_t length;
    if (ScanSequence(bytes + i, text.size() - i, length) == Scan::kComplete) {
      i += length;
      continue;
    }
    out.append(text.data() + run_start, i - run_start);
    out += "\xEF\xBF\xBD";  // U+FFFD
    i += length;
    run_start = i;
  }
  out.append(text.data() + run_start, text.size() - run_start);
}

std::string ReplaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendReplacingInvalidUtf8(text, out);
  return out;
}

size_t IncompleteUtf8Suffix(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  // A truncated sequence is at most 3 bytes, so its lead byte is among the last 3.
  const size_t first = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t start = text.size(); start-- > first;) {
    if ((bytes[start] & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t length;
    return ScanSequence(bytes + start, text.size() - start, length) == Scan::kTruncated ? text.size() - start : 0;
  }
  return 0;
}

}  // namespace dsv4
