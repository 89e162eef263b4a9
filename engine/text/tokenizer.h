// The DeepSeek-V4 tokenizer (spec §6): a Hugging Face `tokenizer.json` with
// byte-level BPE, added tokens matched in the raw text, and a pre-tokenizer of
// Split regexes (behaviour Isolated) followed by the ByteLevel byte-to-char map.
// Encode() gives the ids the Hugging Face `tokenizers` library gives with
// add_special_tokens=False (no automatic BOS: tokenizer_config.json has
// add_bos_token=false; the chat renderer writes BOS as text).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4 {

class Tokenizer {
 public:
  // Reads a tokenizer.json; throws dsv4::Error naming the file and the field
  // on anything malformed or unsupported (see docs/tokenizer.md).
  static Tokenizer FromFile(const std::string& path);
  // The same from the file's text; `source` names it in error messages.
  static Tokenizer FromJson(std::string_view json_text, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of UTF-8 text. Every occurrence of an added token's text (e.g.
  // "<｜User｜>", "<think>") becomes that token, as in the official pipeline.
  // Throws dsv4::Error on invalid UTF-8, naming the byte offset. Thread-safe.
  std::vector<int32_t> Encode(std::string_view text) const;
  void EncodeAppend(std::string_view text, std::vector<int32_t>& ids) const;

  // Text of ids: their bytes joined, ill-formed UTF-8 replaced by U+FFFD the
  // way Hugging Face's ByteLevel decoder does (maximal subparts). Special
  // tokens are kept. Throws dsv4::Error on an id outside [0, VocabSize()).
  std::string Decode(std::span<const int32_t> ids) const;

  // The bytes one token stands for (not necessarily whole UTF-8 characters).
  // Throws dsv4::Error on an id outside [0, VocabSize()).
  const std::string& TokenBytes(int32_t id) const;

  // Id of an added token by its text ("<｜end▁of▁sentence｜>", "</think>"), or
  // of a vocabulary entry by its text in the file (byte-level form, "Ġthe").
  std::optional<int32_t> TokenId(std::string_view token_text) const;

  // Whether an id stands for a token (ids may be unused).
  bool HasToken(int32_t id) const;
  // The ids of the added tokens ("<｜User｜>", "</think>", "｜DSML｜", ...),
  // which constrained decoding never takes for ordinary text.
  std::vector<int32_t> AddedTokenIds() const;
  // One past the largest id (129,280 for DeepSeek-V4).
  int64_t VocabSize() const;

 private:
  struct Data;
  explicit Tokenizer(std::unique_ptr<Data> data);
  std::unique_ptr<Data> data_;
};

}  // namespace dsv4
