#include "engine/text/streaming_decoder.h"

#include <gtest/gtest.h>

#include "engine/text/utf8.h"
#include "loader/error.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

const Tokenizer& DeepSeekTokenizer() {
  static const Tokenizer tokenizer = Tokenizer::FromFile(testing::DataPath("tokenizer/tokenizer.json"));
  return tokenizer;
}

TEST(StreamingDecoder, PrintsOnlyWholeCharactersAndAddsUpToDecode) {
  const Tokenizer& t = DeepSeekTokenizer();
  const std::string text = "Emoji 😀🦀 and 中文 (rare: 𝔘𝔫𝔦) <think>x</think>é";
  const std::vector<int32_t> ids = t.Encode(text);
  StreamingDecoder decoder(t);
  std::string streamed;
  int empty_pushes = 0;
  for (const int32_t id : ids) {
    const std::string piece = decoder.Push(id);
    EXPECT_FALSE(FindInvalidUtf8(piece).has_value()) << "broken character after id " << id;
    empty_pushes += piece.empty();
    streamed += piece;
  }
  streamed += decoder.Finish();
  EXPECT_EQ(streamed, text);
  EXPECT_GT(empty_pushes, 0);  // some characters span several tokens
}

TEST(StreamingDecoder, UnfinishedOrBrokenBytesBecomeReplacementCharacters) {
  const Tokenizer& t = DeepSeekTokenizer();
  const int32_t e2 = *t.TokenId("â");  // 0xE2, a three-byte lead
  const int32_t a = *t.TokenId("a");
  StreamingDecoder decoder(t);
  EXPECT_EQ(decoder.Push(e2), "");
  EXPECT_EQ(decoder.Push(a), "\xEF\xBF\xBD" "a");  // the lead never got its continuation
  EXPECT_EQ(decoder.Push(e2), "");
  EXPECT_EQ(decoder.Finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(decoder.Finish(), "");
  EXPECT_EQ(t.Decode(std::vector<int32_t>{e2, a, e2}), "\xEF\xBF\xBD" "a\xEF\xBF\xBD");
  EXPECT_THROW(decoder.Push(-5), Error);
}

TEST(Utf8, ValidationReplacementAndIncompleteTails) {
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), std::nullopt);
  EXPECT_EQ(FindInvalidUtf8("0123456789é\xF4\x90\x80\x80"), 12u);  // past U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\x80"), 0u);                  // overlong
  // One U+FFFD per maximal subpart: E1 80 (truncated by 'A'), lone 80, F5.
  EXPECT_EQ(ReplaceInvalidUtf8("\xE1\x80" "A\x80\xF5z"), "\xEF\xBF\xBD" "A\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xE2"), 1u);
  EXPECT_EQ(IncompleteUtf8Suffix("ab\xC0"), 0u);        // invalid, not incomplete
  EXPECT_EQ(IncompleteUtf8Suffix("\xE0\x80"), 0u);      // can never complete
}

}  // namespace
}  // namespace dsv4
