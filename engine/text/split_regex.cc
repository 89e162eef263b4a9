#include "engine/text/split_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdio>
#include <vector>

#include "engine/text/unicode_general_category.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

// The Unicode White_Space property (PropList.txt), which is Oniguruma's `\s`
// for UTF-8 text; written as class items so it also fits inside [...].
constexpr std::string_view kWhiteSpaceItems =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

constexpr char32_t kLastCodePoint = 0x10FFFF, kFirstSurrogate = 0xD800, kLastSurrogate = 0xDFFF;

// `ranges`, or their complement when `negate`, as PCRE2 class items
// ("\x{41}-\x{5A}..."). Surrogates are left out: they are not characters in UTF-8.
std::string ClassItems(std::span<const CodePointRange> ranges, bool negate) {
  std::vector<CodePointRange> items;
  auto add = [&](char32_t first, char32_t last) {
    if (first <= kLastSurrogate && last >= kFirstSurrogate) {
      if (first < kFirstSurrogate) items.push_back({first, kFirstSurrogate - 1});
      if (last > kLastSurrogate) items.push_back({kLastSurrogate + 1, last});
    } else {
      items.push_back({first, last});
    }
  };
  if (negate) {
    char32_t next = 0;
    for (const CodePointRange& r : ranges) {
      if (r.first > next) add(next, r.first - 1);
      next = r.last + 1;
    }
    if (next <= kLastCodePoint) add(next, kLastCodePoint);
  } else {
    for (const CodePointRange& r : ranges) add(r.first, r.last);
  }
  std::string out;
  char buffer[32];
  for (const CodePointRange& r : items) {
    std::snprintf(buffer, sizeof(buffer), "\\x{%X}", static_cast<unsigned>(r.first));
    out += buffer;
    if (r.last != r.first) {
      std::snprintf(buffer, sizeof(buffer), "-\\x{%X}", static_cast<unsigned>(r.last));
      out += buffer;
    }
  }
  return out;
}

std::string Pcre2UnicodeVersion() {
  char version[64] = {};
  pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, version);
  return version;
}

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

std::string TranslateOnigurumaPattern(std::string_view pattern, CategoryClasses categories) {
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
      } else if ((escaped == 'p' || escaped == 'P') && i + 2 < pattern.size() && pattern[i + 2] == '{') {
        // A General_Category (\p{L}, \P{Lu}, \p{^N}) becomes, when asked, the
        // explicit class of the tables' Unicode version; other properties (scripts)
        // stay PCRE2's.
        const size_t close = pattern.find('}', i + 3);
        if (close == std::string_view::npos) throw Error("regex \"" + std::string(pattern) + "\": unterminated \\p{");
        std::string_view name = pattern.substr(i + 3, close - i - 3);
        bool negate = escaped == 'P';
        if (!name.empty() && name.front() == '^') {
          negate = !negate;
          name.remove_prefix(1);
        }
        const GeneralCategory* category = FindGeneralCategory(name);
        if (!category || categories == CategoryClasses::kPcre2) {
          out.append(pattern, i, close + 1 - i);
        } else {
          const std::string items = ClassItems(category->ranges, negate);
          out += in_class ? items : "[" + items + "]";
        }
        i = close + 1;
        continue;
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

SplitRegex::Program SplitRegex::Compile(std::string_view pattern, std::string_view translated) {
  int error_code;
  PCRE2_SIZE error_offset;
  // Never \C (one code unit): it would split characters, and matching from
  // inside a character with PCRE2_NO_UTF_CHECK is undefined behaviour.
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK | PCRE2_NEVER_BACKSLASH_C, &error_code,
                                   &error_offset, nullptr);
  if (!code) {
    // The offset is into the translation, which may hold long class lists: name the pattern as written.
    throw Error("regex \"" + std::string(pattern) + "\" does not compile: " + Pcre2Message(error_code));
  }
  // Without JIT support PCRE2's interpreter gives the same matches, only slower.
  return {code, pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0};
}

SplitRegex::SplitRegex(std::string_view pattern) {
  const std::string exact = TranslateOnigurumaPattern(pattern, CategoryClasses::kExplicit);
  exact_ = Compile(pattern, exact);
  const std::string native = TranslateOnigurumaPattern(pattern, CategoryClasses::kPcre2);
  if (native != exact && Pcre2UnicodeVersion() == GeneralCategoryBaselineVersion()) {
    try {
      native_ = Compile(pattern, native);
    } catch (...) {
      pcre2_code_free(exact_.code);
      throw;
    }
  }
}

SplitRegex::SplitRegex(SplitRegex&& other) noexcept : exact_(other.exact_), native_(other.native_) {
  other.exact_ = other.native_ = {};
}

SplitRegex::~SplitRegex() {
  pcre2_code_free(exact_.code);
  pcre2_code_free(native_.code);
}

bool SplitRegex::HasCategoryChanges(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead < 0xC0) continue;  // ASCII, or a continuation byte
    const auto next = [&](size_t k) { return static_cast<char32_t>(text[i + k] & 0x3F); };
    const char32_t c = lead < 0xE0   ? (lead & 0x1F) << 6 | next(1)
                       : lead < 0xF0 ? (lead & 0x0F) << 12 | next(1) << 6 | next(2)
                                     : (lead & 0x07) << 18 | next(1) << 12 | next(2) << 6 | next(3);
    if (ChangedSinceBaseline(c)) return true;
  }
  return false;
}

bool SplitRegex::Find(std::string_view subject, size_t start, size_t& match_begin, size_t& match_end) const {
  return FindWith(HasCategoryChanges(subject) || !native_.code ? exact_ : native_, subject, start, match_begin,
                  match_end);
}

bool SplitRegex::FindWith(const Program& program, std::string_view subject, size_t start, size_t& match_begin,
                          size_t& match_end) {
  ThreadMatchState& state = MatchState();
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  // The caller validated the UTF-8 once; checking it again on every call
  // would make splitting quadratic.
  const int rc = program.jit ? pcre2_jit_match(program.code, text, subject.size(), start, PCRE2_NO_UTF_CHECK,
                                               state.match_data, state.context)
                             : pcre2_match(program.code, text, subject.size(), start, PCRE2_NO_UTF_CHECK,
                                           state.match_data, state.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("pre-tokenizer regex failed: " + Pcre2Message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
  match_begin = ovector[0];
  match_end = ovector[1];
  return true;
}

}  // namespace dsv4
