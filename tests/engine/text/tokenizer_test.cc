#include "engine/text/tokenizer.h"
#include "engine/text/utf8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/byte_level.h"
#include "engine/text/split_regex.h"
#include "loader/error.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using ::dsv4::testing::DataPath;

const Tokenizer& DeepSeekTokenizer() {
  static const Tokenizer tokenizer = Tokenizer::FromFile(DataPath("tokenizer/tokenizer.json"));
  return tokenizer;
}

struct GoldenRow {
  std::string kind, text;
  std::vector<int32_t> ids;
};

const std::vector<GoldenRow>& GoldenRows() {
  static const std::vector<GoldenRow> rows = [] {
    std::vector<GoldenRow> rows;
    std::ifstream in(DataPath("tokenizer/golden_ids.jsonl"));
    for (std::string line; std::getline(in, line);) {
      const auto row = nlohmann::json::parse(line);
      rows.push_back({row["kind"], row["text"], row["ids"].get<std::vector<int32_t>>()});
    }
    return rows;
  }();
  return rows;
}

std::string Utf8(char32_t c) {
  std::string out;
  AppendUtf8(c, out);
  return out;
}

TEST(Tokenizer, EveryGoldenIdSequenceMatches) {
  const auto& rows = GoldenRows();
  ASSERT_EQ(rows.size(), 450u);
  for (const GoldenRow& row : rows) EXPECT_EQ(DeepSeekTokenizer().Encode(row.text), row.ids) << row.kind << ": " << row.text;
}

TEST(Tokenizer, DecodeInvertsEncode) {
  for (const GoldenRow& row : GoldenRows()) {
    EXPECT_EQ(DeepSeekTokenizer().Decode(row.ids), row.text) << row.kind;
    EXPECT_EQ(DeepSeekTokenizer().Decode(DeepSeekTokenizer().Encode(row.text)), row.text) << row.kind;
  }
}

TEST(Tokenizer, SpecialTokensAreFoundByText) {
  const Tokenizer& t = DeepSeekTokenizer();
  EXPECT_EQ(t.VocabSize(), 129280);
  EXPECT_EQ(t.TokenId("<｜begin▁of▁sentence｜>"), 0);
  EXPECT_EQ(t.TokenId("<｜end▁of▁sentence｜>"), 1);
  EXPECT_EQ(t.TokenId("<｜User｜>"), 128803);
  EXPECT_EQ(t.TokenId("<｜Assistant｜>"), 128804);
  EXPECT_EQ(t.TokenId("<think>"), 128821);
  EXPECT_EQ(t.TokenId("</think>"), 128822);
  EXPECT_EQ(t.TokenId("｜DSML｜"), 128825);
  EXPECT_EQ(t.TokenId("<｜latest_reminder｜>"), 128828);
  EXPECT_EQ(t.TokenId("<｜image｜>"), 129279);
  EXPECT_EQ(t.TokenId("Ġthe"), 270);  // a vocabulary entry, in the file's byte-level form
  EXPECT_EQ(t.TokenId("no such token"), std::nullopt);
  EXPECT_EQ(t.TokenBytes(270), " the");
  EXPECT_EQ(t.TokenBytes(128821), "<think>");
}

TEST(Tokenizer, NoAutomaticBosAndAddedTokensInsideText) {
  const Tokenizer& t = DeepSeekTokenizer();
  EXPECT_EQ(t.Encode(""), std::vector<int32_t>{});
  const auto ids = t.Encode("Hi<｜User｜>x</think>");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_NE(ids[0], 0);
  EXPECT_EQ(ids[ids.size() - 1], 128822);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 128803), ids.end());
  // Leftmost-longest: "<｜place▁holder▁no▁10｜>" is not read as "..._no_1" plus text.
  EXPECT_EQ(t.Encode("<｜place▁holder▁no▁10｜>"), std::vector<int32_t>{128010});
}

// Ids from the Hugging Face tokenizers library (0.23.2, Rust core with
// Oniguruma) for white-space code points in three contexts. Oniguruma's \s is
// Unicode White_Space; PCRE2's \s under UCP also matches U+180E (MONGOLIAN
// VOWEL SEPARATOR), which would change the U+180E rows.
struct WhiteSpaceCase {
  char32_t c;
  std::vector<int32_t> mixed, after_space, doubled_before_newline;
};

TEST(Tokenizer, WhiteSpaceCodePointsMatchTheHuggingFaceLibrary) {
  const std::vector<WhiteSpaceCase> cases = {
    {0x0009, {46422, 49293, 19, 4050, 35749, 15372, 1527, 4564}, {49293}, {67, 15372}},
    {0x000A, {201, 67, 539, 19, 78697, 61915, 1527, 34749}, {539}, {67, 6328}},
    {0x000B, {202, 67, 223, 202, 19, 4050, 202, 223, 202, 202, 201, 1527, 202, 200, 202}, {223, 202}, {67, 202, 202, 201}},
    {0x000C, {203, 67, 223, 203, 19, 4050, 203, 223, 203, 203, 201, 1527, 203, 200, 203}, {223, 203}, {67, 203, 203, 201}},
    {0x000D, {204, 67, 223, 204, 19, 4050, 204, 223, 204, 204, 201, 1527, 204, 200, 204}, {223, 204}, {67, 204, 204, 201}},
    {0x001C, {219, 67, 223, 219, 19, 4050, 219, 223, 219, 219, 201, 1527, 219, 200, 219}, {223, 219}, {67, 219, 219, 201}},
    {0x001F, {222, 67, 223, 222, 19, 4050, 222, 223, 222, 222, 201, 1527, 222, 200, 222}, {223, 222}, {67, 222, 222, 201}},
    {0x0020, {260, 262, 19, 4050, 5191, 1527, 223, 35749}, {262}, {67, 2143}},
    {0x0085, {129, 230, 67, 1203, 230, 19, 4050, 129, 230, 1203, 230, 129, 230, 201, 1527, 129, 230, 200, 129, 230}, {1203, 230}, {67, 129, 230, 129, 230, 201}},
    {0x00A0, {2162, 67, 13714, 19, 4050, 74743, 32897, 1527, 2162, 200, 2162}, {13714}, {67, 4069, 201}},
    {0x1680, {160, 251, 225, 67, 8751, 251, 225, 19, 4050, 160, 251, 225, 8751, 251, 225, 160, 251, 225, 201, 1527, 160, 251, 225, 200, 160, 251, 225}, {8751, 251, 225}, {67, 160, 251, 225, 160, 251, 225, 201}},
    {0x180E, {115522, 239, 67, 223, 115522, 239, 19, 4050, 115522, 239, 223, 115522, 239, 115522, 239, 201, 1527, 115522, 239, 200, 115522, 239}, {223, 115522, 239}, {67, 115522, 239, 115522, 239, 201}},
    {0x2000, {300, 225, 67, 663, 225, 19, 4050, 300, 225, 663, 225, 300, 225, 201, 1527, 300, 225, 200, 300, 225}, {663, 225}, {67, 300, 225, 300, 225, 201}},
    {0x200A, {300, 235, 67, 663, 235, 19, 4050, 300, 235, 663, 235, 300, 235, 201, 1527, 300, 235, 200, 300, 235}, {663, 235}, {67, 300, 235, 300, 235, 201}},
    {0x200B, {35020, 67, 223, 35020, 19, 4050, 35020, 223, 35020, 35020, 201, 1527, 35020, 200, 35020}, {223, 35020}, {67, 35020, 35020, 201}},
    {0x2028, {300, 104, 67, 663, 104, 19, 4050, 300, 104, 663, 104, 300, 104, 201, 1527, 300, 104, 200, 300, 104}, {663, 104}, {67, 300, 104, 300, 104, 201}},
    {0x2029, {300, 105, 67, 663, 105, 19, 4050, 300, 105, 663, 105, 300, 105, 201, 1527, 300, 105, 200, 300, 105}, {663, 105}, {67, 300, 105, 300, 105, 201}},
    {0x202F, {300, 110, 67, 663, 110, 19, 4050, 300, 110, 663, 110, 300, 110, 201, 1527, 300, 110, 200, 300, 110}, {663, 110}, {67, 300, 110, 300, 110, 201}},
    {0x205F, {15371, 256, 67, 115120, 256, 19, 4050, 15371, 256, 115120, 256, 15371, 256, 201, 1527, 15371, 256, 200, 15371, 256}, {115120, 256}, {67, 15371, 256, 15371, 256, 201}},
    {0x3000, {18524, 67, 223, 18524, 19, 4050, 18524, 223, 36759, 201, 1527, 18524, 200, 18524}, {223, 18524}, {67, 36759, 201}},
    {0xFEFF, {15251, 67, 223, 15251, 19, 4050, 15251, 223, 15251, 15251, 201, 1527, 15251, 200, 15251}, {223, 15251}, {67, 15251, 15251, 201}},
  };
  for (const WhiteSpaceCase& w : cases) {
    const std::string c = Utf8(w.c);
    const std::string mixed = c + "a " + c + "1 !" + c + " " + c + c + "\n x" + c + "\t" + c;
    EXPECT_EQ(DeepSeekTokenizer().Encode(mixed), w.mixed) << std::hex << static_cast<uint32_t>(w.c);
    EXPECT_EQ(DeepSeekTokenizer().Encode(" " + c), w.after_space) << std::hex << static_cast<uint32_t>(w.c);
    EXPECT_EQ(DeepSeekTokenizer().Encode("a" + c + c + "\n"), w.doubled_before_newline)
        << std::hex << static_cast<uint32_t>(w.c);
  }
}

TEST(Tokenizer, OnigurumaWhiteSpaceBecomesAnExplicitClass) {
  const std::string translated = TranslateOnigurumaPattern(R"(\s+(?!\S)|[^\s\p{L}]|a\-b\\s)", CategoryClasses::kPcre2);
  EXPECT_EQ(translated.find("\\s"), translated.find("\\\\s") + 1);  // only the escaped backslash remains
  EXPECT_NE(translated.find("[^\\t-\\r\\x{20}\\x{85}"), std::string::npos);
  EXPECT_NE(translated.find("[^\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
                            "\\x{205F}\\x{3000}\\p{L}]"),
            std::string::npos);
  EXPECT_THROW(TranslateOnigurumaPattern(R"(\w+)", CategoryClasses::kPcre2), Error);
  EXPECT_THROW(TranslateOnigurumaPattern(R"([\S])", CategoryClasses::kPcre2), Error);
  EXPECT_THROW(TranslateOnigurumaPattern(R"([a[b]])", CategoryClasses::kPcre2), Error);
  // U+0085 is white space to Oniguruma; U+180E and U+200B are not.
  SplitRegex space(R"(\s+)");
  size_t begin, end;
  EXPECT_TRUE(space.Find(Utf8(0x85), 0, begin, end));
  EXPECT_FALSE(space.Find(Utf8(0x180E), 0, begin, end));
  EXPECT_FALSE(space.Find(Utf8(0x200B), 0, begin, end));
}

TEST(Tokenizer, InvalidUtf8IsAnErrorNamingTheOffset) {
  try {
    DeepSeekTokenizer().Encode("abc\xFF" "def");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(DeepSeekTokenizer().Encode("\xED\xA0\x80"), Error);  // a UTF-16 surrogate
  EXPECT_THROW(DeepSeekTokenizer().Encode("\xC0\xAF"), Error);      // overlong
}

TEST(Tokenizer, DecodeRejectsIdsOutOfRangeAndReplacesBrokenCharacters) {
  const Tokenizer& t = DeepSeekTokenizer();
  EXPECT_THROW(t.Decode(std::vector<int32_t>{5, 129280}), Error);
  EXPECT_THROW(t.Decode(std::vector<int32_t>{-1}), Error);
  EXPECT_THROW(t.TokenBytes(1 << 30), Error);
  // "é" is two bytes; its first byte alone decodes to U+FFFD, like from_utf8_lossy.
  const std::vector<int32_t> ids = t.Encode("é");
  ASSERT_EQ(ids.size(), 1u);
  const int32_t first_byte = *t.TokenId("Ã");  // byte 0xC3
  EXPECT_EQ(t.Decode(std::vector<int32_t>{first_byte}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.Decode(std::vector<int32_t>{first_byte, *t.TokenId("©")}), "é");
}

TEST(Tokenizer, LongRunsAndManyThreadsGiveTheSameIds) {
  const Tokenizer& t = DeepSeekTokenizer();
  for (const std::string& unit : {std::string("a"), std::string(" "), std::string("é"), std::string("中"), std::string("7")}) {
    std::string text;
    for (int i = 0; i < 200000; ++i) text += unit;
    EXPECT_EQ(t.Decode(t.Encode(text)), text) << unit;
  }
  const auto& rows = GoldenRows();
  std::vector<int> ok(rows.size());
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t i = 0; i < rows.size(); ++i) ok[i] = t.Encode(rows[i].text) == rows[i].ids;
  for (size_t i = 0; i < rows.size(); ++i) EXPECT_TRUE(ok[i]) << rows[i].text;
}

// A tokenizer.json with the 256 byte tokens (ids 0..255), then `extra`
// vocabulary entries and merges as given.
std::string TinyTokenizerJson(const std::vector<std::string>& extra, const nlohmann::json& merges,
                              const nlohmann::json& pre_tokenizer = nullptr) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[Utf8(ByteLevelChar(static_cast<uint8_t>(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  nlohmann::json file = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array({{{"id", 300}, {"content", "<eos>"}, {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer.is_null()
                            ? nlohmann::json{{"type", "Sequence"},
                                             {"pretokenizers",
                                              {{{"type", "Split"}, {"pattern", {{"Regex", "\\s+|[^\\s]+"}}},
                                                {"behavior", "Isolated"}, {"invert", false}},
                                               {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}
                            : pre_tokenizer},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return file.dump();
}

TEST(Tokenizer, MergesApplyByRankThenLeftmost) {
  // "a b" (rank 0) beats "b c" (rank 1); ties between equal pairs go leftmost.
  const Tokenizer t = Tokenizer::FromJson(TinyTokenizerJson({"ab", "bc", "aa"}, {"a b", "b c", {"a", "a"}}), "tiny");
  EXPECT_EQ(t.Encode("abc"), (std::vector<int32_t>{256, 'c'}));
  EXPECT_EQ(t.Encode("bc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(t.Encode("aaa"), (std::vector<int32_t>{258, 'a'}));
  EXPECT_EQ(t.Encode("aaa<eos> bc"), (std::vector<int32_t>{258, 'a', 300, ' ', 257}));
  EXPECT_EQ(t.VocabSize(), 301);
  EXPECT_THROW(t.TokenBytes(299), Error);  // an id no token uses
}

void ExpectLoadError(const std::string& json, const std::string& fragment) {
  try {
    Tokenizer::FromJson(json, "bad.json");
    ADD_FAILURE() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, MalformedFilesAreClearErrors) {
  ExpectLoadError("{\"model\": {\"vocab\": {\"a\": 0", "invalid JSON");
  ExpectLoadError("[1, 2]", "not a JSON object");
  ExpectLoadError(TinyTokenizerJson({}, {"a zz"}), "\"zz\", which is not in model.vocab");
  ExpectLoadError(TinyTokenizerJson({}, {"a b"}), "\"ab\", which is not in model.vocab");
  ExpectLoadError(TinyTokenizerJson({}, {"a b c"}), "model.merges[0]");
  ExpectLoadError(TinyTokenizerJson({}, {{"a"}}), "model.merges[0]");
  ExpectLoadError(TinyTokenizerJson({}, nlohmann::json::array(),
                                    {{"type", "Split"}, {"pattern", {{"Regex", "x"}}}, {"behavior", "Removed"}}),
                  "pre_tokenizer");
  ExpectLoadError(TinyTokenizerJson({}, nlohmann::json::array(), {{"type", "Whitespace"}}), "not supported");
  ExpectLoadError(TinyTokenizerJson({}, nlohmann::json::array(),
                                    {{"type", "Sequence"},
                                     {"pretokenizers",
                                      {{{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}},
                                       {{"type", "ByteLevel"}, {"use_regex", false}, {"add_prefix_space", false}}}}}),
                  "does not compile");
  nlohmann::json file = nlohmann::json::parse(TinyTokenizerJson({}, nlohmann::json::array()));
  file["model"]["vocab"].erase("Ġ");
  ExpectLoadError(file.dump(), "lacks the byte-level token");
  file = nlohmann::json::parse(TinyTokenizerJson({}, nlohmann::json::array()));
  file["model"]["vocab"]["x"] = "seven";
  ExpectLoadError(file.dump(), "model.vocab values must be integer ids");
  file = nlohmann::json::parse(TinyTokenizerJson({}, nlohmann::json::array()));
  file["model"].erase("merges");
  ExpectLoadError(file.dump(), "model.merges is missing");
  file = nlohmann::json::parse(TinyTokenizerJson({}, nlohmann::json::array()));
  file["added_tokens"][0]["lstrip"] = true;
  ExpectLoadError(file.dump(), "lstrip");
  file = nlohmann::json::parse(TinyTokenizerJson({}, nlohmann::json::array()));
  file.erase("decoder");
  ExpectLoadError(file.dump(), "decoder is missing");
  EXPECT_THROW(Tokenizer::FromFile("/nonexistent/tokenizer.json"), Error);
}

}  // namespace
}  // namespace dsv4
