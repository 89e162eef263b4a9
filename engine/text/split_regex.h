// One `Split` step of a Hugging Face pre-tokenizer (behaviour Isolated): the
// regex's matches and the gaps between them both become pieces. The patterns
// in tokenizer.json are written for Oniguruma, the engine the Hugging Face
// library runs them with; they are translated for PCRE2 (UTF + UCP, JIT). The
// differences that matter are `\s` and the Unicode version of the General_Category
// properties (\p{L}...): the reference classifies by Unicode 16, Debian 12's PCRE2
// by Unicode 14 (see TranslateOnigurumaPattern).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct pcre2_real_code_8;

namespace dsv4 {

// Rewrites an Oniguruma pattern so PCRE2 matches the same strings. Oniguruma's
// `\s` is the Unicode White_Space property, which includes U+0085 (NEL);
// PCRE2's `\s` under UCP is \p{Z} plus \t\n\v\f\r and misses U+0085. So `\s`
// and `\S` become explicit White_Space classes. Escapes whose meaning differs
// between the engines (\h \H \w \W, and \b \B outside a class) and nested
// classes are rejected with dsv4::Error rather than silently mistranslated.
// General_Category properties stay PCRE2's (kPcre2) or become explicit classes
// by the Unicode version of unicode_general_category.h (kExplicit).
enum class CategoryClasses { kPcre2, kExplicit };
std::string TranslateOnigurumaPattern(std::string_view pattern, CategoryClasses categories);

class SplitRegex {
 public:
  // `pattern` as written in tokenizer.json; throws dsv4::Error when it does not compile.
  explicit SplitRegex(std::string_view pattern);
  SplitRegex(SplitRegex&& other) noexcept;
  SplitRegex& operator=(SplitRegex&&) = delete;
  SplitRegex(const SplitRegex&) = delete;
  ~SplitRegex();

  // Leftmost match in `subject` starting at or after `start`; `subject` must be
  // valid UTF-8 and `start` a character boundary. Thread-safe.
  bool Find(std::string_view subject, size_t start, size_t& match_begin, size_t& match_end) const;

  // Whether `text` (valid UTF-8) has a code point whose General_Category changed
  // between PCRE2's Unicode version and the tables' (then only the explicit
  // classes split it as the reference does).
  static bool HasCategoryChanges(std::string_view text);

  // Calls piece(std::string_view) for every non-empty match and gap, in order.
  // `has_category_changes` is HasCategoryChanges(text), or that of a text
  // holding it: a caller splitting pieces again computes it once.
  template <typename PieceFn>
  void ForEachPiece(std::string_view text, bool has_category_changes, PieceFn&& piece) const {
    const Program& program = has_category_changes || !native_.code ? exact_ : native_;
    size_t done = 0, search = 0, begin, end;
    while (search < text.size() && FindWith(program, text, search, begin, end)) {
      if (end == begin) {  // an empty match splits nothing; step over one character
        search = begin + 1;
        while (search < text.size() && (static_cast<unsigned char>(text[search]) & 0xC0) == 0x80) ++search;
        continue;
      }
      if (begin > done) piece(text.substr(done, begin - done));
      piece(text.substr(begin, end - begin));
      done = search = end;
    }
    if (done < text.size()) piece(text.substr(done));
  }

 private:
  // The explicit classes are exact but slower to match (PCRE2 scans a class's
  // ranges one by one, and loses its start-of-match optimisations); text without
  // a code point whose category changed since PCRE2's Unicode version matches
  // the same under PCRE2's own \p tests, which `native_` keeps (null when
  // PCRE2's version is not the tables' baseline, or the pattern has no \p).
  struct Program {
    pcre2_real_code_8* code = nullptr;
    bool jit = false;
  };
  static Program Compile(std::string_view pattern, std::string_view translated);
  static bool FindWith(const Program& program, std::string_view subject, size_t start, size_t& match_begin,
                       size_t& match_end);

  Program exact_, native_;
};

}  // namespace dsv4
