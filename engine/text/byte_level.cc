#include "engine/text/byte_level.h"

#include <array>

namespace dsv4 {
namespace {

// Printable Latin-1 bytes stand for themselves; the other 68 (controls, space,
// DEL, NBSP, soft hyphen...) take U+0100, U+0101, ... in byte order.
struct Alphabet {
  std::array<char32_t, 256> char_of_byte{};
  std::array<int16_t, 324> byte_of_char{};  // -1 where the character is not in the alphabet

  Alphabet() {
    byte_of_char.fill(-1);
    char32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char_of_byte[b] = printable ? static_cast<char32_t>(b) : next_extra++;
      byte_of_char[char_of_byte[b]] = static_cast<int16_t>(b);
    }
  }
};

const Alphabet& GetAlphabet() {
  static const Alphabet alphabet;
  return alphabet;
}

}  // namespace

char32_t ByteLevelChar(uint8_t b) { return GetAlphabet().char_of_byte[b]; }

std::optional<std::string> ByteLevelBytes(std::string_view text) {
  // Every character of the alphabet is below U+0144, so one or two UTF-8 bytes.
  const auto& byte_of_char = GetAlphabet().byte_of_char;
  std::string bytes;
  bytes.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char32_t code;
    if (c < 0x80) {
      code = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      code = (static_cast<char32_t>(c & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      i += 2;
    } else {
      return std::nullopt;
    }
    if (code >= byte_of_char.size() || byte_of_char[code] < 0) return std::nullopt;
    bytes.push_back(static_cast<char>(byte_of_char[code]));
  }
  return bytes;
}

}  // namespace dsv4
