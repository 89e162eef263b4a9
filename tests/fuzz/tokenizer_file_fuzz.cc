// Tokenizer::FromJson on an arbitrary tokenizer.json (ReadTokenizerFile's
// JSON reader, then the field checks, the pre-tokenizer regexes, the
// vocabulary, added tokens and merges). Bad files must throw dsv4::Error. A
// tokenizer that loads encodes a fixed text; what it encodes must decode.
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;

namespace {

constexpr std::string_view kSample =
    "Hello, world! It's 2024-05-01:  3.14159\n\tdef f(x): return x**2  # ok\n"
    "你好，世界。Привет, мир! مرحبا 👋🏽 e\u0301 <｜User｜>hi<｜Assistant｜><think>";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Expect("Tokenizer::FromJson", [&] {
    const Tokenizer tokenizer = Tokenizer::FromJson(fuzz::AsText(data, size), "fuzz/tokenizer.json");
    std::vector<int32_t> ids;
    fuzz::Expect("Tokenizer::Encode", [&] { ids = tokenizer.Encode(kSample); });
    for (const int32_t id : ids) {
      fuzz::Check(tokenizer.HasToken(id), "Encode gave id " + std::to_string(id) + ", which is not a token");
    }
    try {
      tokenizer.Decode(ids);
    } catch (const Error& e) {
      fuzz::Finding(std::string("Decode refused the ids Encode gave: ") + e.what());
    }
    for (const int32_t id : tokenizer.AddedTokenIds()) {
      fuzz::Check(tokenizer.HasToken(id), "added token id " + std::to_string(id) + " is not a token");
    }
  });
  return 0;
}
