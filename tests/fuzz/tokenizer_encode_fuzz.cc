// The real tokenizer's encoder on arbitrary bytes. Invalid UTF-8 must throw
// dsv4::Error; valid text must encode, and decoding its ids, at once or one
// token at a time through StreamingDecoder, must give the text back.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/streaming_decoder.h"
#include "engine/text/utf8.h"
#include "tests/fuzz/real_tokenizer.h"

using namespace dsv4;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Tokenizer& tokenizer = fuzz::RealTokenizer();
  const std::string_view text = fuzz::AsText(data, size);
  if (FindInvalidUtf8(text)) {
    fuzz::Expect("Tokenizer::Encode", [&] {
      tokenizer.Encode(text);
      fuzz::Finding("Encode accepted invalid UTF-8");
    });
    return 0;
  }
  std::vector<int32_t> ids;
  try {
    ids = tokenizer.Encode(text);
  } catch (const std::exception& e) {
    fuzz::Finding(std::string("Encode failed on valid UTF-8: ") + e.what());
  }
  fuzz::Check(text.empty() == ids.empty(), "empty text and only empty text has no tokens");
  fuzz::Check(tokenizer.Decode(ids) == text, "Decode(Encode(text)) == text");
  StreamingDecoder stream(tokenizer);
  std::string streamed;
  for (const int32_t id : ids) streamed += stream.Push(id);
  streamed += stream.Finish();
  fuzz::Check(streamed == text, "the streamed decoding == text");
  return 0;
}
