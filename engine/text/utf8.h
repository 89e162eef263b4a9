// UTF-8 well-formedness (Unicode §3.9, Table 3-7): validation of input text,
// the U+FFFD replacement that byte-level decoding needs, and the incomplete
// tail a streaming decoder must hold back.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dsv4 {

// Appends the UTF-8 encoding of code point c (< 0x110000).
void AppendUtf8(char32_t c, std::string& out);

// What a byte of 0x80 or more starts in well-formed UTF-8 (Unicode Table
// 3-7): the sequence's length (2 to 4) and the range of its second byte (the
// later ones are 80..BF); nothing for a byte that cannot lead.
struct Utf8Lead {
  int length;
  unsigned char low, high;
};
std::optional<Utf8Lead> Utf8LeadByte(unsigned char lead);

// Offset of the first byte of `text` that is not part of well-formed UTF-8
// (overlongs, surrogates and code points past U+10FFFF are ill-formed), or
// std::nullopt when all of it is.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// `bytes` with every ill-formed sequence replaced by U+FFFD, one per maximal
// subpart: the practice Unicode recommends and Rust's String::from_utf8_lossy
// (hence Hugging Face's ByteLevel decoder) follows.
std::string ReplaceInvalidUtf8(std::string_view bytes);
void AppendReplacingInvalidUtf8(std::string_view bytes, std::string& out);

// Length of the suffix of `bytes` that is the start of a well-formed character
// still missing bytes (0 to 3). ReplaceInvalidUtf8 of the text before it does
// not depend on what follows, so that text is safe to print.
size_t IncompleteUtf8Suffix(std::string_view bytes);

}  // namespace dsv4
