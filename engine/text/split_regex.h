// One `Split` step of a Hugging Face pre-tokenizer (behaviour Isolated): the
// regex's matches and the gaps between them both become pieces. The patterns
// in tokenizer.json are written for Oniguruma, the engine the Hugging Face
// library runs them with; they are translated for PCRE2 (UTF + UCP, JIT),
// whose only relevant difference is `\s` (see TranslateOnigurumaPattern).
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
std::string TranslateOnigurumaPattern(std::string_view pattern);

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

  // Calls piece(std::string_view) for every non-empty match and gap, in order.
  template <typename PieceFn>
  void ForEachPiece(std::string_view text, PieceFn&& piece) const {
    size_t done = 0, search = 0, begin, end;
    while (search < text.size() && Find(text, search, begin, end)) {
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
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

}  // namespace dsv4
