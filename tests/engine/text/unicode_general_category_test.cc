#include "engine/text/unicode_general_category.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/split_regex.h"
#include "engine/text/tokenizer.h"
#include "engine/text/utf8.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

std::string Utf8(char32_t c) {
  std::string out;
  AppendUtf8(c, out);
  return out;
}

bool InRanges(const GeneralCategory& category, char32_t c) {
  for (const CodePointRange& r : category.ranges) {
    if (c >= r.first && c <= r.last) return true;
  }
  return false;
}

bool IsSurrogate(char32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

TEST(UnicodeGeneralCategory, TablesAreUnicode16AndNamesMatchLoosely) {
  EXPECT_EQ(GeneralCategoryUnicodeVersion(), "16.0.0");
  ASSERT_NE(FindGeneralCategory("L"), nullptr);
  EXPECT_EQ(FindGeneralCategory("letter"), FindGeneralCategory("L"));
  EXPECT_EQ(FindGeneralCategory("Uppercase Letter"), FindGeneralCategory("Lu"));
  EXPECT_EQ(FindGeneralCategory("other-symbol"), FindGeneralCategory("So"));
  EXPECT_EQ(FindGeneralCategory("Han"), nullptr);  // a script, not a category
  EXPECT_TRUE(InRanges(*FindGeneralCategory("So"), 0x1FAC6));  // FINGERPRINT, new in Unicode 16
  EXPECT_TRUE(InRanges(*FindGeneralCategory("Lu"), U'A'));
  EXPECT_TRUE(ChangedSinceBaseline(0x1FAC6));
  EXPECT_FALSE(ChangedSinceBaseline(U'A'));
  EXPECT_FALSE(ChangedSinceBaseline(0x4E00));
  for (const char* name : {"C", "L", "M", "N", "P", "S", "Z", "Lu", "Mn", "Nd", "Po", "So", "Zs", "Cn"}) {
    const GeneralCategory& category = *FindGeneralCategory(name);
    ASSERT_FALSE(category.ranges.empty()) << name;
    for (size_t i = 0; i < category.ranges.size(); ++i) {
      EXPECT_LE(category.ranges[i].first, category.ranges[i].last) << name;
      EXPECT_LE(category.ranges[i].last, 0x10FFFFu) << name;
      if (i > 0) EXPECT_GT(category.ranges[i].first, category.ranges[i - 1].last + 1) << name;
    }
  }
}

// Every code point whose category changed since PCRE2's Unicode version goes
// through the explicit class; the others through PCRE2's own \p, which must
// agree with the tables: so both halves are checked against the tables.
TEST(UnicodeGeneralCategory, SplitPropertiesMatchTheTablesForEveryCodePoint) {
  for (const char* name : {"L", "M", "N", "P", "S", "Lu", "Nd", "So"}) {
    const GeneralCategory& category = *FindGeneralCategory(name);
    const SplitRegex property("\\p{" + std::string(name) + "}");
    const SplitRegex negated("\\P{" + std::string(name) + "}");
    int changed = 0;
    for (char32_t c = 0; c <= 0x10FFFF; ++c) {
      if (IsSurrogate(c)) continue;
      const bool is_changed = ChangedSinceBaseline(c);
      if (!is_changed && c % 5 != 0) continue;  // a sample of the unchanged ones keeps this fast
      changed += is_changed;
      const std::string text = Utf8(c);
      size_t begin, end;
      ASSERT_EQ(property.Find(text, 0, begin, end), InRanges(category, c)) << name << " U+" << std::hex << static_cast<uint32_t>(c);
      if (is_changed || c % 25 == 0) {
        ASSERT_EQ(negated.Find(text, 0, begin, end), !InRanges(category, c)) << "not " << name << " U+" << std::hex << static_cast<uint32_t>(c);
      }
    }
    EXPECT_GT(changed, 1000) << name;
  }
}

TEST(UnicodeGeneralCategory, ClassesWithPropertiesInsideAndNegatedFollowTheTables) {
  const SplitRegex letters_or_marks(R"([\p{L}\p{M}]+)");
  const SplitRegex not_letter(R"([^\r\n\p{L}\p{P}\p{S}])");
  const SplitRegex caret(R"(\p{^S})");
  const std::string fingerprint = Utf8(0x1FAC6);
  size_t begin, end;
  EXPECT_FALSE(letters_or_marks.Find(fingerprint, 0, begin, end));
  EXPECT_FALSE(not_letter.Find(fingerprint, 0, begin, end));  // a symbol, so not in [^...\p{S}]
  EXPECT_FALSE(caret.Find(fingerprint, 0, begin, end));
  EXPECT_TRUE(caret.Find("a", 0, begin, end));
  const std::string text = "ab" + Utf8(0x10D4A) + "c";  // U+10D4A: a Garay letter (Unicode 16)
  ASSERT_TRUE(letters_or_marks.Find(text, 0, begin, end));
  EXPECT_EQ(end - begin, text.size());
}

// The reference classifies U+1FAC6 as a symbol (So, Unicode 16): the third split
// keeps a symbol run apart from the letters after it. Under Unicode 14 it is
// unassigned and would prefix the letter run ("🫆y").
TEST(UnicodeGeneralCategory, PreTokenizerSplitsNewSymbolsAsTheReferenceDoes) {
  const SplitRegex split(R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)");
  const std::string fingerprint = Utf8(0x1FAC6);
  const std::string text = "x" + fingerprint + fingerprint + "y";
  std::vector<std::string> pieces;
  split.ForEachPiece(text, SplitRegex::HasCategoryChanges(text), [&](std::string_view p) { pieces.emplace_back(p); });
  EXPECT_EQ(pieces, (std::vector<std::string>{"x", fingerprint + fingerprint, "y"}));

  const Tokenizer tokenizer = Tokenizer::FromFile(testing::DataPath("tokenizer/tokenizer.json"));
  std::vector<int32_t> expected;
  for (const std::string& piece : pieces) {
    const std::vector<int32_t> ids = tokenizer.Encode(piece);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(tokenizer.Encode(text), expected);
}

}  // namespace
}  // namespace dsv4
