#include "engine/text/unicode_general_category.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace dsv4 {
namespace {

#include "engine/text/unicode_general_category.inc"

// Oniguruma's loose matching of property names (UAX #44 LM3).
std::string LooseName(std::string_view name) {
  std::string loose;
  for (const char c : name) {
    if (c != ' ' && c != '-' && c != '_') loose.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return loose;
}

}  // namespace

std::string_view GeneralCategoryUnicodeVersion() { return kUnicodeVersion; }
std::string_view GeneralCategoryBaselineVersion() { return kBaselineUnicodeVersion; }

bool ChangedSinceBaseline(char32_t c) {
  if (c < kChangedSinceBaseline[0].first) return false;  // most text: no search
  const auto after = std::upper_bound(std::begin(kChangedSinceBaseline), std::end(kChangedSinceBaseline), c,
                                      [](char32_t value, const CodePointRange& r) { return value < r.first; });
  return after != std::begin(kChangedSinceBaseline) && c <= std::prev(after)->last;
}

const GeneralCategory* FindGeneralCategory(std::string_view name) {
  const std::string loose = LooseName(name);
  for (const GeneralCategory& value : kGeneralCategories) {
    if (loose == LooseName(value.short_name) || loose == LooseName(value.long_name)) return &value;
  }
  return nullptr;
}

}  // namespace dsv4
