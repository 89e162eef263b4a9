// Supported pattern subset (ECMA-262 syntax; the pattern matches characters,
// i.e. Unicode code points, as with the `u` flag):
//   - literal characters: any code point, written as UTF-8;
//   - `.`: any character except the line terminators \n \r U+2028 U+2029;
//   - classes `[...]` and `[^...]` with single characters, ranges `a-z` and
//     the class escapes below; `-` is literal first or last; `[]` matches
//     nothing and `[^]` any character; `[\b]` is U+0008;
//   - class escapes \d \D \w \W \s \S (ECMA sets: \w = [A-Za-z0-9_], \s =
//     U+0009-000D, U+0020, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
//     U+202F, U+205F, U+3000, U+FEFF);
//   - character escapes \t \n \r \f \v \0 (not before a digit), \cX, \xHH,
//     \uHHHH (a surrogate pair \uHHHH\uHHHH is one character), \u{H...} up to
//     10FFFF, and `\` before any character other than an ASCII letter or
//     digit stands for that character (\. \* \\ \/ \- \[ \] ...);
//   - groups `( )` and `(?: )` (capturing groups are treated as
//     non-capturing), alternation `|`, empty alternatives;
//   - quantifiers ? * + {n} {n,} {n,m} with counts up to 10000, and their
//     lazy forms (*? ...), which match the same strings;
//   - `^` only at the start of the pattern (or of a top-level alternative)
//     and `$` only at its end (or at the end of a top-level alternative).
//     Without them the pattern is searched: any characters (newlines
//     included) may come before and after the match.
// Rejected, with the construct and its byte offset in the message:
// backreferences \1 \k<..>, lookahead/lookbehind, named groups, inline
// flags (?i), unicode property escapes \p \P, word boundaries \b \B, octal
// escapes, unknown letter escapes, ^ or $ elsewhere, a quantifier with
// nothing to repeat, {n,m} with n > m, counts above 10000, unbalanced ( ) [,
// a literal { } ] that is not escaped, reversed ranges, a class escape as
// a range bound ([\d-z]), and invalid UTF-8.
// Surrogate code points (D800-DFFF) never occur in the output, so a lone
// surrogate escape matches nothing and ranges across them skip them.
// The expression matches the encoded body: kRaw raw UTF-8, kJson one
// encoding per character (the escapes listed in regex_pattern.h).
#include "engine/structured/regex_pattern.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/text/utf8.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int64_t kMaxRepeat = 10000;

// A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
using CharSet = std::vector<std::pair<uint32_t, uint32_t>>;

CharSet Normalized(CharSet set) {
  std::sort(set.begin(), set.end());
  CharSet out;
  for (const auto& r : set) {
    if (!out.empty() && r.first <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

CharSet Complement(const CharSet& set) {
  CharSet out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : set) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

CharSet Intersect(const CharSet& a, const CharSet& b) {
  CharSet out;
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    const uint32_t lo = std::max(a[i].first, b[j].first);
    const uint32_t hi = std::min(a[i].second, b[j].second);
    if (lo <= hi) out.push_back({lo, hi});
    (a[i].second < b[j].second ? i : j)++;
  }
  return out;
}

CharSet Minus(const CharSet& a, const CharSet& b) { return Intersect(a, Complement(b)); }

CharSet Single(uint32_t c) { return {{c, c}}; }

const CharSet kDigit = {{'0', '9'}};
const CharSet kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const CharSet kSpace = {{0x09, 0x0D}, {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680}, {0x2000, 0x200A},
                        {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
const CharSet kLineTerminators = {{0x0A, 0x0A}, {0x0D, 0x0D}, {0x2028, 0x2029}};
const CharSet kSurrogates = {{0xD800, 0xDFFF}};
// The characters a JSON string body cannot hold raw: controls, '"', '\\'.
const CharSet kJsonEscaped = {{0x00, 0x1F}, {'"', '"'}, {'\\', '\\'}};

std::string Utf8(uint32_t c) {
  std::string out;
  AppendUtf8(c, out);
  return out;
}

// The UTF-8 encodings of [lo, hi] (no surrogates) as sequences of byte
// ranges. A range of one encoded length is the product of its per-byte
// ranges when, after the first byte where lo and hi differ, lo's bytes are
// all 80 and hi's all BF; split until every piece is such a range.
void AppendUtf8Ranges(uint32_t lo, uint32_t hi, std::vector<Expr>& out) {
  for (const uint32_t top : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= top && hi > top) {
      AppendUtf8Ranges(lo, top, out);
      AppendUtf8Ranges(top + 1, hi, out);
      return;
    }
  }
  const std::string first = Utf8(lo), last = Utf8(hi);
  for (size_t i = 1; i < first.size(); ++i) {
    const uint32_t low_bits = (1u << (6 * i)) - 1;
    if ((lo & ~low_bits) == (hi & ~low_bits)) continue;
    if ((lo & low_bits) != 0) {
      AppendUtf8Ranges(lo, lo | low_bits, out);
      AppendUtf8Ranges((lo | low_bits) + 1, hi, out);
      return;
    }
    if ((hi & low_bits) != low_bits) {
      AppendUtf8Ranges(lo, (hi & ~low_bits) - 1, out);
      AppendUtf8Ranges(hi & ~low_bits, hi, out);
      return;
    }
  }
  std::vector<Expr> bytes;
  for (size_t k = 0; k < first.size(); ++k) {
    bytes.push_back(Expr::Symbols(static_cast<uint8_t>(first[k]), static_cast<uint8_t>(last[k])));
  }
  out.push_back(Expr::Seq(std::move(bytes)));
}

// One byte out of `bytes` (a set of values below 0x80).
Expr ByteSet(const CharSet& bytes) {
  std::vector<Expr> options;
  for (const auto& [lo, hi] : bytes) options.push_back(Expr::Symbols(static_cast<int>(lo), static_cast<int>(hi)));
  return Expr::Alt(std::move(options));
}

char HexDigit(uint32_t v) { return static_cast<char>(v < 10 ? '0' + v : 'a' + (v - 10)); }

// The letter of the short JSON escape for `c` (\" \\ \b \t \n \f \r), or 0.
char ShortEscape(uint32_t c) {
  switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case 0x08: return 'b';
    case 0x09: return 't';
    case 0x0A: return 'n';
    case 0x0C: return 'f';
    case 0x0D: return 'r';
    default: return 0;
  }
}

// The one escape kJson writes for each of `chars` (a subset of kJsonEscaped):
// a backslash, then the short escape letter or u00 and two lowercase hex
// digits, the digits grouped into ranges rather than one branch each.
Expr JsonEscapes(const CharSet& chars) {
  CharSet letters;
  CharSet low_digits[2];  // \u00XX by the high digit X (0 or 1)
  for (const auto& [lo, hi] : chars) {
    for (uint32_t c = lo; c <= hi; ++c) {
      if (const char letter = ShortEscape(c)) {
        letters.push_back({letter, letter});
      } else {
        const char digit = HexDigit(c & 0xF);
        low_digits[c >> 4].push_back({digit, digit});
      }
    }
  }
  std::vector<Expr> unicode;
  for (int high = 0; high < 2; ++high) {
    if (low_digits[high].empty()) continue;
    unicode.push_back(Expr::Seq({Expr::Byte('0' + high), ByteSet(Normalized(low_digits[high]))}));
  }
  std::vector<Expr> after_backslash = {ByteSet(Normalized(letters))};
  if (!unicode.empty()) after_backslash.push_back(Expr::Seq({Expr::Literal("u00"), Expr::Alt(std::move(unicode))}));
  return Expr::Seq({Expr::Byte('\\'), Expr::Alt(std::move(after_backslash))});
}

// One character out of `set`, as the bytes of its encoding in `form`.
Expr EncodeSet(const CharSet& set, StringForm form) {
  CharSet raw = Minus(set, kSurrogates);
  std::vector<Expr> options;
  if (form == StringForm::kJson) {
    const CharSet escaped = Intersect(raw, kJsonEscaped);
    if (!escaped.empty()) options.push_back(JsonEscapes(escaped));
    raw = Minus(raw, kJsonEscaped);
  }
  for (const auto& [lo, hi] : raw) AppendUtf8Ranges(lo, hi, options);
  return Expr::Alt(std::move(options));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

int HexValue(char c) {
  if (IsDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void Fail(const std::string& what, size_t at, const std::string& problem) {
  throw Error("pattern: " + what + " at offset " + std::to_string(at) + " " + problem);
}

[[noreturn]] void Unsupported(const std::string& what, size_t at) { Fail(what, at, "is not supported"); }

class Parser {
 public:
  Parser(std::string_view pattern, StringForm form)
      : p_(pattern),
        form_(form),
        any_star_(Expr::Repeat(EncodeSet({{0, kMaxCodePoint}}, form), 0, -1)),
        dot_(EncodeSet(Complement(kLineTerminators), form)) {}

  Expr Parse() {
    if (const std::optional<size_t> bad = FindInvalidUtf8(p_)) BadUtf8(*bad);
    std::vector<Expr> options;
    do {
      options.push_back(TopAlternative());
    } while (Eat('|'));
    if (!AtEnd()) Fail(")", pos_, "has no matching (");
    return Expr::Alt(std::move(options));
  }

 private:
  bool AtEnd() const { return pos_ >= p_.size(); }
  bool Next(char c, size_t ahead = 0) const { return pos_ + ahead < p_.size() && p_[pos_ + ahead] == c; }
  bool Eat(char c) {
    if (!Next(c)) return false;
    ++pos_;
    return true;
  }
  bool AlternativeEnds() const { return AtEnd() || Next('|') || Next(')'); }

  // An alternative of the whole pattern: anchored by a leading ^ / trailing
  // $, otherwise searched (any characters before / after).
  Expr TopAlternative() {
    std::vector<Expr> seq;
    if (!Eat('^')) seq.push_back(any_star_);
    bool anchored_end = false;
    while (!AlternativeEnds()) {
      if (Next('$') && (pos_ + 1 == p_.size() || Next('|', 1))) {
        ++pos_;
        anchored_end = true;
        break;
      }
      Term(seq);
    }
    if (!anchored_end) seq.push_back(any_star_);
    return Expr::Seq(std::move(seq));
  }

  Expr Disjunction() {
    std::vector<Expr> options;
    do {
      std::vector<Expr> seq;
      while (!AlternativeEnds()) Term(seq);
      options.push_back(Expr::Seq(std::move(seq)));
    } while (Eat('|'));
    return Expr::Alt(std::move(options));
  }

  void Term(std::vector<Expr>& seq) {
    Expr atom = Atom();
    if (const auto q = Quantifier()) {
      atom = Expr::Repeat(std::move(atom), q->first, q->second);
      if ((Next('*') || Next('+') || Next('?') || Next('{'))) NothingToRepeat();
    }
    seq.push_back(std::move(atom));
  }

  Expr Atom() {
    const size_t at = pos_;
    switch (p_[pos_]) {
      case '(': return Group();
      case '[': return EncodeSet(Class(), form_);
      case '.': ++pos_; return dot_;
      case '\\': return EncodeSet(Escape(false), form_);
      case '*': case '+': case '?': case '{': NothingToRepeat();
      case '}': Fail("}", at, "must be escaped as \\}");
      case ']': Fail("]", at, "has no matching [ (escape a literal ] as \\])");
      case '^': Fail("^", at, "is not supported (only at the start of the pattern or of a top-level alternative)");
      case '$': Fail("$", at, "is not supported (only at the end of the pattern or of a top-level alternative)");
      default: return EncodeSet(Single(DecodeChar()), form_);
    }
  }

  [[noreturn]] void NothingToRepeat() {
    const size_t at = pos_;
    Quantifier();  // to name it whole (and to report a malformed {...} as such)
    Fail("quantifier " + std::string(p_.substr(at, pos_ - at)), at, "has nothing to repeat");
  }

  // {min, max} (max < 0: unbounded) of a quantifier here, if there is one.
  std::optional<std::pair<int64_t, int64_t>> Quantifier() {
    const size_t at = pos_;
    std::pair<int64_t, int64_t> bounds;
    if (Next('*') || Next('+') || Next('?')) {
      const char c = p_[pos_++];
      bounds = {c == '+' ? 1 : 0, c == '?' ? 1 : -1};
    } else if (Eat('{')) {
      bounds.first = bounds.second = Count(at);
      if (Eat(',')) bounds.second = Next('}') ? -1 : Count(at);
      if (!Eat('}')) BadBrace(at);
      if (bounds.second >= 0 && bounds.first > bounds.second) {
        Fail("repeat " + std::string(p_.substr(at, pos_ - at)), at, "has min above max");
      }
    } else {
      return std::nullopt;
    }
    Eat('?');  // lazy: the same strings match
    return bounds;
  }

  int64_t Count(size_t brace) {
    if (AtEnd() || !IsDigit(p_[pos_])) BadBrace(brace);
    const size_t at = pos_;
    int64_t n = 0;
    for (; !AtEnd() && IsDigit(p_[pos_]); ++pos_) n = std::min(n * 10 + (p_[pos_] - '0'), kMaxRepeat + 1);
    if (n > kMaxRepeat) {
      Fail("repeat count " + std::string(p_.substr(at, pos_ - at)), at, "is above " + std::to_string(kMaxRepeat));
    }
    return n;
  }

  [[noreturn]] void BadBrace(size_t at) {
    Fail("{", at, "does not start a quantifier {n}, {n,} or {n,m} (escape a literal { as \\{)");
  }

  Expr Group() {
    const size_t at = pos_++;
    if (Eat('?')) {
      if (Next('=') || Next('!')) Unsupported("lookahead (?" + std::string(1, p_[pos_]), at);
      if (Next('<') && (Next('=', 1) || Next('!', 1))) Unsupported("lookbehind (?<" + std::string(1, p_[pos_ + 1]), at);
      if (Next('<')) Unsupported("named group (?<", at);
      if (!Eat(':')) Unsupported("inline flags (?" + std::string(p_.substr(pos_, AtEnd() ? 0 : 1)), at);
    }
    Expr inner = Disjunction();
    if (!Eat(')')) Fail("(", at, "is not closed");
    return inner;
  }

  CharSet Class() {
    const size_t at = pos_++;
    const bool negated = Eat('^');
    CharSet set;
    while (!Eat(']')) {
      if (AtEnd()) Fail("character class [", at, "is not closed");
      const size_t lo_at = pos_;
      const bool lo_is_class = IsClassEscape();
      const CharSet lo = ClassAtom();
      if (!Next('-') || pos_ + 1 >= p_.size() || Next(']', 1)) {
        set.insert(set.end(), lo.begin(), lo.end());
        continue;
      }
      ++pos_;
      const size_t hi_at = pos_;
      const bool hi_is_class = IsClassEscape();
      const CharSet hi = ClassAtom();
      if (lo_is_class || hi_is_class) {
        const size_t escape_at = lo_is_class ? lo_at : hi_at;
        Fail("class escape " + std::string(p_.substr(escape_at, 2)), escape_at, "cannot bound a range");
      }
      if (lo[0].first > hi[0].first) {
        Fail("range " + std::string(p_.substr(lo_at, pos_ - lo_at)), lo_at, "is out of order");
      }
      set.push_back({lo[0].first, hi[0].first});
    }
    set = Normalized(std::move(set));
    return negated ? Complement(set) : set;
  }

  bool IsClassEscape() const {
    if (!Next('\\') || pos_ + 1 >= p_.size()) return false;
    const char c = p_[pos_ + 1];
    return c == 'd' || c == 'D' || c == 'w' || c == 'W' || c == 's' || c == 'S';
  }

  CharSet ClassAtom() { return Next('\\') ? Escape(true) : Single(DecodeChar()); }

  CharSet Escape(bool in_class) {
    const size_t at = pos_++;
    if (AtEnd()) Fail("\\", at, "ends the pattern");
    const char c = p_[pos_++];
    switch (c) {
      case 'd': return kDigit;
      case 'D': return Complement(kDigit);
      case 'w': return kWord;
      case 'W': return Complement(kWord);
      case 's': return kSpace;
      case 'S': return Complement(kSpace);
      case 't': return Single('\t');
      case 'n': return Single('\n');
      case 'r': return Single('\r');
      case 'f': return Single('\f');
      case 'v': return Single('\v');
      case 'b':
        if (in_class) return Single('\b');
        Unsupported("word boundary \\b", at);
      case 'B': Unsupported("word boundary \\B", at);
      case '0':
        if (!AtEnd() && IsDigit(p_[pos_])) Unsupported("octal escape " + std::string(p_.substr(at, 3)), at);
        return Single(0);
      case 'x': return Single(Hex(2, at));
      case 'u': return Single(UnicodeEscape(at));
      case 'c':
        if (AtEnd() || !IsLetter(p_[pos_])) Fail("\\c", at, "needs a letter A-Z or a-z after it");
        return Single(p_[pos_++] % 32);
      case 'p': case 'P': Unsupported("unicode property escape \\" + std::string(1, c), at);
      case 'k': Unsupported("named backreference \\k", at);
      default: break;
    }
    if (IsDigit(c)) {
      while (!AtEnd() && IsDigit(p_[pos_])) ++pos_;
      Unsupported("backreference " + std::string(p_.substr(at, pos_ - at)), at);
    }
    if (IsLetter(c)) Unsupported("escape \\" + std::string(1, c), at);
    --pos_;  // any other escaped character stands for itself
    return Single(DecodeChar());
  }

  // The value of `digits` hex digits at `at`, or -1.
  int64_t HexAt(size_t at, size_t digits) const {
    if (at + digits > p_.size()) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      const int d = HexValue(p_[at + i]);
      if (d < 0) return -1;
      v = v * 16 + d;
    }
    return v;
  }

  uint32_t Hex(size_t digits, size_t escape_at) {
    const int64_t v = HexAt(pos_, digits);
    if (v < 0) Fail(std::string(p_.substr(escape_at, 2)), escape_at, "needs " + std::to_string(digits) + " hex digits");
    pos_ += digits;
    return static_cast<uint32_t>(v);
  }

  uint32_t UnicodeEscape(size_t at) {
    if (Eat('{')) {
      const size_t digits_at = pos_;
      int64_t v = 0;
      for (; !AtEnd() && HexValue(p_[pos_]) >= 0; ++pos_) {
        v = std::min<int64_t>(v * 16 + HexValue(p_[pos_]), kMaxCodePoint + 1);
      }
      if (pos_ == digits_at || !Eat('}')) Fail("\\u{", at, "needs hex digits and a closing }");
      if (v > kMaxCodePoint) Fail(std::string(p_.substr(at, pos_ - at)), at, "is above U+10FFFF");
      return static_cast<uint32_t>(v);
    }
    const uint32_t v = Hex(4, at);
    // A surrogate pair written as two escapes is one character.
    const int64_t low = Next('\\') && Next('u', 1) ? HexAt(pos_ + 2, 4) : -1;
    if (v >= 0xD800 && v <= 0xDBFF && low >= 0xDC00 && low <= 0xDFFF) {
      pos_ += 6;
      return 0x10000 + ((v - 0xD800) << 10) + static_cast<uint32_t>(low - 0xDC00);
    }
    return v;
  }

  // The pattern was checked to be well-formed UTF-8 as a whole (Parse).
  uint32_t DecodeChar() {
    const auto lead = static_cast<uint8_t>(p_[pos_]);
    const int length = lead < 0x80 ? 1 : Utf8LeadByte(lead)->length;
    uint32_t c = length == 1 ? lead : lead & (0x7F >> length);
    for (int k = 1; k < length; ++k) c = c << 6 | (static_cast<uint8_t>(p_[pos_ + k]) & 0x3F);
    pos_ += length;
    return c;
  }

  [[noreturn]] void BadUtf8(size_t at) {
    static constexpr char kHex[] = "0123456789abcdef";
    const auto byte = static_cast<uint8_t>(p_[at]);
    Fail(std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xF], at, "is not valid UTF-8");
  }

  std::string_view p_;
  size_t pos_ = 0;
  StringForm form_;
  Expr any_star_;  // any characters, newlines included: the search padding
  Expr dot_;
};

}  // namespace

Expr PatternExpr(std::string_view pattern, StringForm form) { return Parser(pattern, form).Parse(); }

}  // namespace dsv4
