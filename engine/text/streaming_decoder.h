// Token-by-token detokenization for streaming output. A byte-level token may
// end in the middle of a UTF-8 character (emoji and CJK often span two or
// three tokens); those bytes wait for the next token, so what is printed is
// always whole characters, and everything printed equals Tokenizer::Decode of
// all the ids.
#pragma once

#include <cstdint>
#include <string>

#include "engine/text/tokenizer.h"

namespace dsv4 {

class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // The text that is complete once token `id` is added (often "", e.g. for
  // the first half of an emoji). Ill-formed bytes become U+FFFD as in Decode.
  // Throws dsv4::Error on an id outside the vocabulary.
  std::string Push(int32_t id);

  // What is still held at the end of the stream: an unfinished character,
  // written as U+FFFD (as Decode would). Leaves the decoder empty.
  std::string Finish();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes of an unfinished character (at most 3)
};

}  // namespace dsv4
