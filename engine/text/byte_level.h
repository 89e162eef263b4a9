// GPT-2's byte-level alphabet (Hugging Face ByteLevel pre-tokenizer and
// decoder): each of the 256 byte values stands for one printable character,
// so that BPE vocabularies can be stored as text. "Ġ" (U+0120) is the space.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsv4 {

// The character that stands for byte `b`.
char32_t ByteLevelChar(uint8_t b);

// The bytes a byte-level token text stands for, or std::nullopt when some
// character of it is not in the alphabet (or `text` is not UTF-8). The
// Hugging Face ByteLevel decoder writes such a token's own UTF-8 instead
// (that is how added tokens like "<｜User｜>" come out).
std::optional<std::string> ByteLevelBytes(std::string_view text);

}  // namespace dsv4
