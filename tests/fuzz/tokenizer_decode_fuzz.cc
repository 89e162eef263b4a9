// The real tokenizer's decoders on arbitrary token ids (three input bytes
// each, spread over [-1, vocabulary size]): Decode and StreamingDecoder must
// refuse an id that is not a token with dsv4::Error, write only valid UTF-8,
// and agree with each other.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/streaming_decoder.h"
#include "engine/text/utf8.h"
#include "tests/fuzz/real_tokenizer.h"

using namespace dsv4;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Tokenizer& tokenizer = fuzz::RealTokenizer();
  const int64_t span = tokenizer.VocabSize() + 2;
  std::vector<int32_t> ids;
  for (size_t i = 0; i + 3 <= size; i += 3) {
    const int64_t raw = data[i] | data[i + 1] << 8 | data[i + 2] << 16;
    ids.push_back(static_cast<int32_t>(raw % span - 1));
  }
  StreamingDecoder stream(tokenizer);
  std::string streamed;
  std::vector<int32_t> valid;
  for (const int32_t id : ids) {
    bool refused = false;
    fuzz::Expect("StreamingDecoder::Push", [&] {
      refused = true;
      streamed += stream.Push(id);
      refused = false;
    });
    fuzz::Check(refused == !tokenizer.HasToken(id), "Push refuses exactly the ids that are not tokens");
    if (refused) break;
    valid.push_back(id);
  }
  streamed += stream.Finish();
  fuzz::Check(!FindInvalidUtf8(streamed), "the streamed text is valid UTF-8");
  std::string whole;
  try {
    whole = tokenizer.Decode(valid);
  } catch (const Error& e) {
    fuzz::Finding(std::string("Decode refused ids that Push took: ") + e.what());
  }
  fuzz::Check(whole == streamed, "Decode == the concatenated StreamingDecoder output");
  return 0;
}
