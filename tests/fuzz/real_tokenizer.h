// The DeepSeek-V4 tokenizer of the test data, loaded once per process.
#pragma once

#include "engine/text/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace dsv4::fuzz {

inline const Tokenizer& RealTokenizer() {
  static const Tokenizer tokenizer = Tokenizer::FromFile(TestData("tokenizer/tokenizer.json"));
  return tokenizer;
}

}  // namespace dsv4::fuzz
