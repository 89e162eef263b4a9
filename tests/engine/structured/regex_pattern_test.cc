#include "engine/structured/regex_pattern.h"

#include <cctype>
#include <cstdio>
#include <functional>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine/structured/expr_reference.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using namespace std::string_literals;
using testing::ExprMatches;
using testing::ExprMatchesPrefix;

// The body kJson must produce for `text` (UTF-8): the one encoding
// PatternExpr accepts for each character.
std::string JsonBody(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<uint8_t>(c) < 0x20) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
          out += escape;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Utf8(uint32_t c) {
  if (c < 0x80) return std::string(1, static_cast<char>(c));
  if (c < 0x800) return {static_cast<char>(0xC0 | c >> 6), static_cast<char>(0x80 | (c & 0x3F))};
  if (c < 0x10000) {
    return {static_cast<char>(0xE0 | c >> 12), static_cast<char>(0x80 | (c >> 6 & 0x3F)),
            static_cast<char>(0x80 | (c & 0x3F))};
  }
  return {static_cast<char>(0xF0 | c >> 18), static_cast<char>(0x80 | (c >> 12 & 0x3F)),
          static_cast<char>(0x80 | (c >> 6 & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
}

// For failure messages: the text with newlines visible.
std::string Visible(const std::string& text) { return std::regex_replace(text, std::regex("\n"), "\\n"); }

int64_t Nodes(const Expr& e) {
  int64_t n = 1;
  for (const Expr& item : e.items()) n += Nodes(item);
  return n;
}

const std::string kDate = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
const std::string kEmail =
    "^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63}){0,4}\\.[A-Za-z]{2,24}$";

struct Case {
  std::string pattern, text;
  bool matches;
};

// Each case holds for both forms: the text raw as UTF-8 (kRaw) and as its
// JSON body (kJson).
const std::vector<Case> kCases = {
    {"abc", "abc", true}, {"abc", "xxabcxx", true}, {"abc", "ab", false}, {"abc", "a\nbc", false},
    {"b", "a\nb\n", true}, {"", "anything", true}, {"", "", true},
    {"^abc", "abcx", true}, {"^abc", "xabc", false}, {"abc$", "xabc", true}, {"abc$", "abcx", false},
    {"^abc$", "abc", true}, {"^abc$", "abcc", false}, {"^$", "", true}, {"^$", "\n", false},
    // Classes.
    {"^[a-c]+$", "abcba", true}, {"^[a-c]+$", "abd", false}, {"^[^a-c]$", "d", true}, {"^[^a-c]$", "b", false},
    {"^[^a]$", "\n", true}, {"^[^a]$", "é", true}, {"^[^\"]*$", "say \"hi\"", false}, {"^[^\"]*$", "a\\b\n", true},
    {"^[-a]+$", "-a", true}, {"^[a-]+$", "a-", true}, {"^[a\\-z]+$", "-az", true}, {"^[a\\-z]$", "b", false},
    {"^[]$", "", false}, {"^[]$", "a", false}, {"^[^]$", "\n", true}, {"^[\\d\\s]+$", "1 2\t3", true},
    {"^[\\w-]+$", "a_B-c9", true}, {"^[\\w-]+$", "a.b", false}, {"^[\\b]$", "\b", true}, {"^[.]$", "x", false},
    {"^[\\]]$", "]", true}, {"^[[]$", "[", true},
    // Escapes.
    {"^\\d\\D\\w\\W\\s\\S$", "5x_-\tz", true}, {"^\\d$", "٣", false}, {"^\\w$", "é", false}, {"^\\W$", "é", true},
    {"^\\s$", "\u00a0", true}, {"^\\s$", "\u3000", true}, {"^\\s$", "\ufeff", true}, {"^\\s$", "\u200b", false},
    {"^\\S$", "\u2028", false}, {"^\\t\\n\\r\\f\\v\\0$", "\t\n\r\f\v\0"s, true}, {"^\\cJ$", "\n", true},
    {"^\\x41\\u0042\\u{43}$", "ABC", true}, {"^\\uD83D\\uDE00$", "😀", true}, {"^\\u{1F600}$", "😀", true},
    {"^\\uD83D$", "😀", false}, {"^\\.\\*\\\\\\/\\-\\[\\]\\(\\)\\{\\}\\|\\^\\$\\?\\+$", ".*\\/-[](){}|^$?+", true},
    // Dot.
    {"^.$", "\n", false}, {"^.$", "\r", false}, {"^.$", "\u2028", false}, {"^.$", "\u2029", false},
    {"^.$", "\x7f", true}, {"^.$", "é", true}, {"^.$", "中", true}, {"^.$", "😀", true}, {"^..$", "😀", false},
    {"^.$", "\x01", true}, {"a.c", "xa\nc", false}, {"a.c", "\nabc\n", true},
    // Quantifiers.
    {"^a{3}$", "aaa", true}, {"^a{3}$", "aa", false}, {"^a{3}$", "aaaa", false}, {"^a{2,}$", "aa", true},
    {"^a{2,}$", "aaaaaaa", true}, {"^a{2,}$", "a", false}, {"^a{2,4}$", "aaaa", true}, {"^a{2,4}$", "aaaaa", false},
    {"^a{0}$", "", true}, {"^a?$", "", true}, {"^a?$", "aa", false}, {"^a+$", "", false}, {"^a*$", "", true},
    {"^a*?b+?$", "aabb", true}, {"^a{1,2}?$", "aa", true}, {"^(ab){2}$", "abab", true}, {"^(ab){2}$", "abb", false},
    {"^(?:ab|c){1,2}$", "cab", true}, {"^(?:ab|c){1,2}$", "cabc", false}, {"^é{2}$", "éé", true},
    {"^😀+$", "😀😀😀", true}, {"^(a*)*$", "aaa", true}, {"^(a|)+b$", "aab", true},
    // Alternation and anchors per top-level alternative.
    {"^(a|bc|)$", "", true}, {"^(a|bc)$", "bc", true}, {"^(a|bc)$", "abc", false}, {"^a|b$", "ax", true},
    {"^a|b$", "xb", true}, {"^a|b$", "xa", false}, {"^a|b$", "bx", false}, {"^a$|^b$", "b", true},
    {"^a$|^b$", "ab", false}, {"a|", "zzz", true}, {"x(y|z)", "__xz", true},
    // Non-ASCII.
    {"^[à-ÿ]$", "é", true}, {"^[à-ÿ]$", "a", false}, {"^[一-龥]+$", "中文", true}, {"^[一-龥]+$", "中a", false},
    {"^[^一-龥]$", "😀", true}, {"^[😀-😏]$", "😃", true}, {"^[😀-😏]$", "😐", false}, {"^[\\u0000-\\uFFFF]$", "😀", false},
    {"^[\\u0000-\\uFFFF]$", "\uffff", true}, {"^[^\\u0000-\\u{10FFFE}]$", "\U0010ffff", true}, {"中.文", "x中😀文", true},
    // Characters JSON escapes.
    {"^a\"b$", "a\"b", true}, {"^\\\\$", "\\", true}, {"^[\\x00-\\x1f]+$", "\x01\x1f\n\b"s, true},
    {"^[^\\x00-\\x1f]+$", "ab\x7f", true}, {"^[^\\x00-\\x1f]+$", "a\tb", false}, {"^\\x0b$", "\v", true},
    // Formats json_schema.cc uses.
    {kDate, "2024-02-29", true}, {kDate, "2024-13-01", false},
    {kEmail, "a.b+c@x-y.example.org", true}, {kEmail, "a@b", false},
};

TEST(RegexPattern, MatchesTheTableInBothForms) {
  for (const Case& c : kCases) {
    EXPECT_EQ(ExprMatches(PatternExpr(c.pattern, StringForm::kRaw), c.text), c.matches)
        << "raw: /" << c.pattern << "/ on \"" << Visible(c.text) << "\"";
    EXPECT_EQ(ExprMatches(PatternExpr(c.pattern, StringForm::kJson), JsonBody(c.text)), c.matches)
        << "json: /" << c.pattern << "/ on \"" << Visible(c.text) << "\"";
  }
}

TEST(RegexPattern, JsonEncodesEachCharacterOneWay) {
  const Expr quote = PatternExpr("^a\"b$", StringForm::kJson);
  EXPECT_TRUE(ExprMatches(quote, R"(a\"b)"));
  EXPECT_FALSE(ExprMatches(quote, "a\"b"));
  EXPECT_FALSE(ExprMatches(quote, R"(a\u0022b)"));
  const Expr newline = PatternExpr("^\\n$", StringForm::kJson);
  EXPECT_TRUE(ExprMatches(newline, "\\n"));
  EXPECT_FALSE(ExprMatches(newline, "\n"));
  EXPECT_FALSE(ExprMatches(newline, "\\u000a"));
  const Expr control = PatternExpr("^\\x1f$", StringForm::kJson);
  EXPECT_TRUE(ExprMatches(control, "\\u001f"));
  EXPECT_FALSE(ExprMatches(control, "\\u001F"));
  EXPECT_FALSE(ExprMatches(control, "\x1f"));
  const Expr any = PatternExpr("^[^a]$", StringForm::kJson);
  for (const std::string body :
       {"\\/", "\\u0041", "\\u00e9", "\\u007f", "\"", "\\", "\x01", "\\x", "\\u0", "\\ud83d\\ude00"}) {
    EXPECT_FALSE(ExprMatches(any, body)) << body;
  }
  for (const std::string body : {"/", "A", "é", "\\\"", "\\\\", "\\u0001", "\\b", "\x7f", "😀"}) {
    EXPECT_TRUE(ExprMatches(any, body)) << body;
  }
  EXPECT_TRUE(ExprMatches(PatternExpr("^\\u2028$", StringForm::kJson), "\u2028"));
  EXPECT_TRUE(ExprMatches(PatternExpr("^\\x7f$", StringForm::kJson), "\x7f"));
}

TEST(RegexPattern, RawFormIsWellFormedUtf8Only) {
  const Expr any = PatternExpr("^[^a]$", StringForm::kRaw);
  for (const std::string bytes : {"\x80", "\xc3", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                  "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff"}) {
    EXPECT_FALSE(ExprMatches(any, bytes)) << ::testing::PrintToString(bytes);
  }
  EXPECT_TRUE(ExprMatches(any, "\""));
  EXPECT_TRUE(ExprMatches(any, "\n"));
}

// Classes compiled to byte ranges agree with their code-point definition on
// every code point below U+0900, a spread above and the UTF-8 boundaries.
TEST(RegexPattern, ClassesMatchExactlyTheirCodePoints) {
  const auto in = [](std::vector<std::pair<uint32_t, uint32_t>> ranges) {
    return [ranges](uint32_t c) {
      for (const auto& [lo, hi] : ranges) {
        if (c >= lo && c <= hi) return true;
      }
      return false;
    };
  };
  const auto space = in({{0x09, 0x0D}, {0x20, 0x20}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                         {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}});
  const std::vector<std::pair<std::string, std::function<bool(uint32_t)>>> classes = {
      {"[^\"]", [](uint32_t c) { return c != '"'; }},
      {"[^a-z\\d]", [](uint32_t c) { return !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9'); }},
      {"\\s", space},
      {"\\S", [&](uint32_t c) { return !space(c); }},
      {"\\W", [](uint32_t c) { return !isalnum(static_cast<int>(c < 0x80 ? c : 0)) && c != '_'; }},
      {".", [](uint32_t c) { return c != '\n' && c != '\r' && c != 0x2028 && c != 0x2029; }},
      {"[\\x00-\\x1f\\\\]", in({{0, 0x1F}, {'\\', '\\'}})},
      {"[é-\\u{10FFFF}]", in({{0xE9, 0x10FFFF}})},
      {"[\\u0800-\\uFFFF]", in({{0x800, 0xFFFF}})},
      {"[\\x7f-\\u07ff\\u{10000}-\\u{3FFFF}]", in({{0x7F, 0x7FF}, {0x10000, 0x3FFFF}})},
  };
  std::vector<uint32_t> points = {0x7FF,   0x800,   0xFFF,   0x1000,  0xCFFF,  0xD000,   0xD7FF,  0xE000,
                                  0xFFFF,  0x10000, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF};
  for (uint32_t c = 0; c < 0x900; ++c) points.push_back(c);
  for (uint32_t c = 0x900; c <= 0x10FFFF; c += 257) points.push_back(c);
  for (const auto& [cls, member] : classes) {
    for (const StringForm form : {StringForm::kRaw, StringForm::kJson}) {
      const Expr e = PatternExpr("^" + cls + "$", form);
      for (const uint32_t c : points) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        const std::string body = form == StringForm::kJson ? JsonBody(Utf8(c)) : Utf8(c);
        ASSERT_EQ(ExprMatches(e, body), member(c)) << cls << " U+" << std::hex << c;
      }
    }
  }
}

TEST(RegexPattern, ExpressionsStaySmall) {
  const Expr repeat = PatternExpr("^a{3,5}$", StringForm::kRaw);
  ASSERT_EQ(repeat.kind(), Expr::Kind::kRepeat);
  EXPECT_EQ(repeat.min(), 3);
  EXPECT_EQ(repeat.max(), 5);
  // Byte ranges: a handful of branches per UTF-8 length, plus the escapes.
  EXPECT_LT(Nodes(PatternExpr("^[^\"]$", StringForm::kRaw)), 40);
  EXPECT_LT(Nodes(PatternExpr("^[^\"]$", StringForm::kJson)), 70);
  EXPECT_LT(Nodes(PatternExpr("^\\W{10000}$", StringForm::kJson)), 80);
}

TEST(RegexPattern, RejectsUnsupportedConstructsNamingThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"(a)\\1", "pattern: backreference \\1 at offset 3 is not supported"},
      {"(a)\\12", "backreference \\12 at offset 3"},
      {"\\k<n>", "named backreference \\k at offset 0 is not supported"},
      {"a(?=b)", "lookahead (?= at offset 1 is not supported"},
      {"a(?!b)", "lookahead (?! at offset 1"},
      {"(?<=a)b", "lookbehind (?<= at offset 0"},
      {"(?<!a)b", "lookbehind (?<! at offset 0"},
      {"(?<n>a)", "named group (?< at offset 0"},
      {"(?i)a", "inline flags (?i at offset 0"},
      {"\\p{L}", "unicode property escape \\p at offset 0"},
      {"x\\P{L}", "unicode property escape \\P at offset 1"},
      {"\\bword", "word boundary \\b at offset 0"},
      {"a\\B", "word boundary \\B at offset 1"},
      {"\\01", "octal escape \\01 at offset 0"},
      {"\\q", "escape \\q at offset 0 is not supported"},
      {"*a", "quantifier * at offset 0 has nothing to repeat"},
      {"a**", "quantifier * at offset 2 has nothing to repeat"},
      {"a|+b", "quantifier + at offset 2 has nothing to repeat"},
      {"(?:{2})", "quantifier {2} at offset 3 has nothing to repeat"},
      {"^*", "quantifier * at offset 1 has nothing to repeat"},
      {"a{2}{3}", "quantifier {3} at offset 4 has nothing to repeat"},
      {"(a", "( at offset 0 is not closed"},
      {"((a)", "( at offset 0 is not closed"},
      {"a)", ") at offset 1 has no matching ("},
      {"[ab", "character class [ at offset 0 is not closed"},
      {"a]", "] at offset 1 has no matching ["},
      {"a}", "} at offset 1 must be escaped"},
      {"a{", "{ at offset 1 does not start a quantifier"},
      {"a{,3}", "{ at offset 1 does not start a quantifier"},
      {"a{3,2}", "repeat {3,2} at offset 1 has min above max"},
      {"a{10001}", "repeat count 10001 at offset 2 is above 10000"},
      {"a{1,99999999999999999999}", "repeat count 99999999999999999999 at offset 4 is above 10000"},
      {"a^b", "^ at offset 1 is not supported"},
      {"(^a)", "^ at offset 1 is not supported"},
      {"a$b", "$ at offset 1 is not supported"},
      {"(a$)", "$ at offset 2 is not supported"},
      {"[z-a]", "range z-a at offset 1 is out of order"},
      {"[\\d-z]", "class escape \\d at offset 1 cannot bound a range"},
      {"[a-\\s]", "class escape \\s at offset 3 cannot bound a range"},
      {"\\x4", "\\x at offset 0 needs 2 hex digits"},
      {"\\u12", "\\u at offset 0 needs 4 hex digits"},
      {"\\u{110000}", "\\u{110000} at offset 0 is above U+10FFFF"},
      {"\\u{}", "\\u{ at offset 0 needs hex digits"},
      {"\\c1", "\\c at offset 0 needs a letter"},
      {"a\\", "\\ at offset 1 ends the pattern"},
      {"a\xff", "byte 0xff at offset 1 is not valid UTF-8"},
      {"\xc3", "byte 0xc3 at offset 0 is not valid UTF-8"},
  };
  for (const auto& [pattern, message] : cases) {
    for (const StringForm form : {StringForm::kRaw, StringForm::kJson}) {
      EXPECT_THAT(testing::ErrorOf([&] { PatternExpr(pattern, form); }), ::testing::HasSubstr(message)) << pattern;
    }
  }
}

TEST(ExprReference, PrefixesOfHandBuiltExpressions) {
  const Expr abc = Expr::Literal("abc");
  EXPECT_TRUE(ExprMatchesPrefix(abc, ""));
  EXPECT_TRUE(ExprMatchesPrefix(abc, "ab"));
  EXPECT_TRUE(ExprMatchesPrefix(abc, "abc"));
  EXPECT_FALSE(ExprMatchesPrefix(abc, "abd"));
  EXPECT_FALSE(ExprMatchesPrefix(abc, "abcd"));
  EXPECT_FALSE(ExprMatchesPrefix(Expr::Never(), ""));
  EXPECT_TRUE(ExprMatchesPrefix(Expr::Empty(), ""));
  EXPECT_FALSE(ExprMatchesPrefix(Expr::Empty(), "a"));
  const Expr abab = Expr::Repeat(Expr::Literal("ab"), 2, 3);
  EXPECT_TRUE(ExprMatchesPrefix(abab, "aba"));
  EXPECT_TRUE(ExprMatchesPrefix(abab, "ababab"));
  EXPECT_FALSE(ExprMatchesPrefix(abab, "abababa"));
  EXPECT_FALSE(ExprMatches(abab, "ab"));
  const Expr nullable_body = Expr::Repeat(Expr::Alt({Expr::Empty(), Expr::Byte('a')}), 10000, 10000);
  EXPECT_TRUE(ExprMatchesPrefix(nullable_body, "aaa"));
  EXPECT_TRUE(ExprMatches(nullable_body, "aaa"));
  EXPECT_FALSE(ExprMatchesPrefix(nullable_body, "ab"));
  const Expr then_b = Expr::Seq({Expr::Repeat(Expr::Byte('a'), 0, -1), Expr::Byte('b')});
  EXPECT_TRUE(ExprMatchesPrefix(then_b, "aaaa"));
  EXPECT_TRUE(ExprMatchesPrefix(then_b, "aab"));
  EXPECT_FALSE(ExprMatchesPrefix(then_b, "aabb"));
  EXPECT_TRUE(ExprMatchesPrefix(Expr::Symbols(kDsmlSymbol, kDsmlSymbol), ""));
}

TEST(ExprReference, StringBodies) {
  const Expr json = Expr::StringBody(StringForm::kJson, 1, 2);
  EXPECT_TRUE(ExprMatches(json, R"(a\u00e9)"));
  EXPECT_TRUE(ExprMatches(json, R"(\/\")"));
  EXPECT_FALSE(ExprMatches(json, ""));
  EXPECT_FALSE(ExprMatches(json, "abc"));
  EXPECT_FALSE(ExprMatches(json, R"(\ud800)"));
  EXPECT_FALSE(ExprMatches(json, "a\""));
  EXPECT_FALSE(ExprMatches(json, "\n"));
  EXPECT_TRUE(ExprMatchesPrefix(json, "a\\u00"));
  EXPECT_TRUE(ExprMatchesPrefix(json, "a\\uD7"));
  EXPECT_FALSE(ExprMatchesPrefix(json, "a\\uD8"));
  EXPECT_FALSE(ExprMatchesPrefix(json, "a\\uDf"));
  EXPECT_TRUE(ExprMatchesPrefix(json, "a\\uE"));
  EXPECT_TRUE(ExprMatchesPrefix(json, "\xc3"));
  EXPECT_TRUE(ExprMatchesPrefix(json, "\xf0\x9f\x98"));
  EXPECT_FALSE(ExprMatchesPrefix(json, "\xed\xa0"));
  EXPECT_FALSE(ExprMatchesPrefix(json, "\xe0\x80"));
  EXPECT_FALSE(ExprMatchesPrefix(json, "abc"));
  const Expr raw = Expr::StringBody(StringForm::kRaw, 2, -1);
  EXPECT_TRUE(ExprMatches(raw, "\"\\\n😀"));
  EXPECT_FALSE(ExprMatches(raw, "é"));
  EXPECT_TRUE(ExprMatchesPrefix(raw, ""));
  EXPECT_FALSE(ExprMatchesPrefix(raw, "\xc0"));
}

// Over {a, b}, on languages where every viable prefix completes within four
// more letters, ExprMatchesPrefix holds exactly when such a completion exists.
TEST(ExprReference, PrefixesAgreeWithCompletions) {
  std::vector<std::string> strings = {""};
  for (size_t i = 0; strings.back().size() < 6; ++i) {
    strings.push_back(strings[i] + "a");
    strings.push_back(strings[i] + "b");
  }
  for (const char* pattern : {"^(a|bb){1,3}$", "^a?b{2}a*$", "^(ab|ba)+$", "^[ab]{2,}b$", "^(a|)(b|)$", "^$"}) {
    const Expr e = PatternExpr(pattern, StringForm::kRaw);
    for (const std::string& s : strings) {
      bool completes = false;
      for (const std::string& t : strings) completes = completes || (t.size() <= 4 && ExprMatches(e, s + t));
      EXPECT_EQ(ExprMatchesPrefix(e, s), completes) << pattern << " on " << s;
    }
  }
}

// Random patterns from the supported subset, checked against std::regex
// (ECMAScript) on random strings over a small alphabet, in both forms.
class RandomPatterns {
 public:
  explicit RandomPatterns(uint32_t seed) : rng_(seed) {}

  std::string Pattern() {
    std::string out;
    const int alternatives = Pick(4) == 0 ? 2 : 1;
    for (int i = 0; i < alternatives; ++i) {
      if (i > 0) out += '|';
      if (Pick(3) == 0) out += '^';
      out += Sequence(2);
      if (Pick(3) == 0) out += '$';
    }
    return out;
  }

  std::string Text() {
    static const std::string kAlphabet = "ab1 \nc";
    std::string out(Pick(8), ' ');
    for (char& c : out) c = kAlphabet[Pick(static_cast<int>(kAlphabet.size()))];
    return out;
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::string Sequence(int depth) {
    std::string out;
    for (int terms = 1 + Pick(3); terms > 0; --terms) out += Term(depth);
    return out;
  }

  std::string Term(int depth) {
    static const std::vector<std::string> kAtoms = {"a", "b", "1", " ", ".", "[ab]", "[^a]", "[a-c]", "[^\\d ]", "\\d",
                                                    "\\D", "\\w", "\\W", "\\s", "\\S", "[\\s\\d]", "\\n", "[^\\n]"};
    static const std::vector<std::string> kQuantifiers = {"", "", "", "?", "{2}", "{0,2}", "{1,3}", "*", "+", "{1,}"};
    // Groups take bounded quantifiers only: std::regex backtracks
    // exponentially through nested unbounded loops.
    int quantifiers = static_cast<int>(kQuantifiers.size());
    std::string atom;
    if (depth > 0 && Pick(4) == 0) {
      quantifiers -= 3;
      atom = Pick(2) ? "(" : "(?:";
      for (int alternatives = 1 + Pick(2); alternatives > 0; --alternatives) {
        atom += Sequence(depth - 1);
        if (alternatives > 1) atom += '|';
      }
      atom += ')';
    } else {
      atom = kAtoms[Pick(static_cast<int>(kAtoms.size()))];
    }
    const std::string& quantifier = kQuantifiers[Pick(quantifiers)];
    return atom + quantifier + (!quantifier.empty() && Pick(5) == 0 ? "?" : "");
  }

  std::mt19937 rng_;
};

TEST(RegexPattern, AgreesWithStdRegexOnRandomPatterns) {
  RandomPatterns random(20240611);
  int checked = 0, matched = 0;
  for (int i = 0; i < 1500; ++i) {
    const std::string pattern = random.Pattern();
    const std::regex re(pattern, std::regex::ECMAScript);
    const Expr raw = PatternExpr(pattern, StringForm::kRaw);
    const Expr json = PatternExpr(pattern, StringForm::kJson);
    for (int j = 0; j < 4; ++j) {
      const std::string text = random.Text();
      const bool expected = std::regex_search(text, re);
      ASSERT_EQ(ExprMatches(raw, text), expected) << "/" << pattern << "/ on \"" << Visible(text) << "\"";
      ASSERT_EQ(ExprMatches(json, JsonBody(text)), expected) << "/" << pattern << "/ on \"" << Visible(text) << "\"";
      ++checked;
      matched += expected;
    }
  }
  EXPECT_EQ(checked, 6000);
  EXPECT_GT(matched, 1000);  // both outcomes are well represented
  EXPECT_LT(matched, 5000);
}

}  // namespace
}  // namespace dsv4
