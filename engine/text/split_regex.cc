#include "engine/text/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "loader/error.h"

namespace dsv4 {
namespace {

// The Unicode White_Space property (PropList.txt), which is Oniguruma's `\s`
// for UTF-8 text; written as class items so it also fits inside [...].
constexpr std::string_view kWhiteSpaceItems =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Per-thread matching state: match data and a JIT stack larger than the
// default 32 KiB, so pathological inputs (megabyte-long runs) still match.
struct ThreadMatchState {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);

  ThreadMatchState() {
    if (!match_data || !context || !jit_stack) throw Error("out of memory creating PCRE2 match state");
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match_data);
  }
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

std::string TranslateOnigurumaPattern(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size();) {
    const char c = pattern[i];
    if (c == '\\') {
      if (i + 1 == pattern.size()) throw Error("regex \"" + std::string(pattern) + "\" ends with a lone backslash");
      const char escaped = pattern[i + 1];
      if (escaped == 's') {
        out += in_class ? std::string(kWhiteSpaceItems) : "[" + std::string(kWhiteSpaceItems) + "]";
      } else if (escaped == 'S') {
        if (in_class) throw Error("regex \"" + std::string(pattern) + "\": \\S inside a character class is not supported");
        out += "[^" + std::string(kWhiteSpaceItems) + "]";
      } else if (escaped == 'h' || escaped == 'H' || escaped == 'w' || escaped == 'W' ||
                 (!in_class && (escaped == 'b' || escaped == 'B'))) {
        throw Error("regex \"" + std::string(pattern) + "\": \\" + escaped +
                    " means different things in Oniguruma and PCRE2 and is not supported");
      } else {
        out.append(pattern, i, 2);
      }
      i += 2;
      continue;
    }
    if (c == '[') {
      if (in_class) {
        if (pattern.substr(i, 2) != "[:") {
          throw Error("regex \"" + std::string(pattern) + "\": nested character classes are not supported");
        }
        const size_t close = pattern.find(":]", i + 2);
        if (close == std::string_view::npos) throw Error("regex \"" + std::string(pattern) + "\": unterminated [:class:]");
        out.append(pattern, i, close + 2 - i);
        i = close + 2;
        continue;
      }
      in_class = true;
      out.push_back('[');
      ++i;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i < pattern.size() && pattern[i] == '^') out.push_back(pattern[i++]);
      if (i < pattern.size() && pattern[i] == ']') out.push_back(pattern[i++]);
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out.push_back(c);
    ++i;
  }
  return out;
}

SplitRegex::SplitRegex(std::string_view pattern) {
  const std::string translated = TranslateOnigurumaPattern(pattern);
  int error_code;
  PCRE2_SIZE error_offset;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                        PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error_code, &error_offset, nullptr);
  if (!code_) {
    throw Error("regex \"" + std::string(pattern) + "\" does not compile: " + Pcre2Message(error_code) +
                " at offset " + std::to_string(error_offset) + " of \"" + translated + "\"");
  }
  // Without JIT support PCRE2's interpreter gives the same matches, only slower.
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

SplitRegex::SplitRegex(SplitRegex&& other) noexcept : code_(other.code_), jit_(other.jit_) { other.code_ = nullptr; }

SplitRegex::~SplitRegex() { pcre2_code_free(code_); }

bool SplitRegex::Find(std::string_view subject, size_t start, size_t& match_begin, size_t& match_end) const {
  ThreadMatchState& state = MatchState();
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // The caller validated the UTF-8 once; checking it again on every call
  // would make splitting quadratic.
  const int rc = jit_ ? pcre2_jit_match(code_, text, subject.size(), start, PCRE2_NO_UTF_CHECK, state.match_data,
                                        state.context)
                      : pcre2_match(code_, text, subject.size(), start, PCRE2_NO_UTF_CHECK, state.match_data,
                                    state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("pre-tokenizer regex failed: " + Pcre2Message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
  match_begin = ovector[0];
  match_end = ovector[1];
  return true;
}

}  // namespace dsv4
