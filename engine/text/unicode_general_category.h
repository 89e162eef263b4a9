// The General_Category of every code point by the Unicode version the reference
// tokenizer uses, generated from Unicode data by scripts/unicode/ (see
// unicode_general_category.inc), so pre-tokenizer classes such as \p{L} do not
// depend on the Unicode version of the system's regex library.
#pragma once

#include <span>
#include <string_view>

namespace dsv4 {

struct CodePointRange {
  char32_t first, last;
};

struct GeneralCategory {
  std::string_view short_name, long_name;
  std::span<const CodePointRange> ranges;  // ascending, disjoint
};

// The Unicode version of the tables ("16.0.0"), and an older one ("14.0.0",
// PCRE2 10.42's) against which ChangedSinceBaseline is kept.
std::string_view GeneralCategoryUnicodeVersion();
std::string_view GeneralCategoryBaselineVersion();

// Whether code point c has another General_Category in the tables' version than in
// the baseline (assigned since, or recategorised).
bool ChangedSinceBaseline(char32_t c);

// A General_Category value named as Oniguruma accepts it: short or long name
// ("L", "Letter", "Lu", "Uppercase_Letter"), case, spaces, hyphens and
// underscores ignored. Null when the name is not a General_Category value (a
// script, a binary property...).
const GeneralCategory* FindGeneralCategory(std::string_view name);

}  // namespace dsv4
