// Test support: a plain reference matcher for grammar expressions (no
// rules), to check compilers and token masks against. It follows the
// expression tree directly: for a subexpression and a start position it
// computes every position where a match can end, so it is slow (exponential
// at worst) but has no automaton of its own to get wrong.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string_view>

#include "engine/structured/grammar_expr.h"
#include "loader/error.h"

namespace dsv4::testing {
namespace expr_reference {

// An end "past the input": the input ran out inside the subexpression and
// some string of its language continues what was left (prefix mode only).
inline constexpr size_t kOff = SIZE_MAX;
using Positions = std::set<size_t>;

// Whether the language of `e` holds any string.
inline bool Productive(const Expr& e) {
  switch (e.kind()) {
    case Expr::Kind::kNever: return false;
    case Expr::Kind::kSeq:
      for (const Expr& item : e.items()) {
        if (!Productive(item)) return false;
      }
      return true;
    case Expr::Kind::kAlt:
      for (const Expr& item : e.items()) {
        if (Productive(item)) return true;
      }
      return false;
    case Expr::Kind::kRepeat: return e.min() == 0 || Productive(e.items()[0]);
    case Expr::Kind::kRule: throw Error("expr_reference: rules are not supported");
    default: return true;
  }
}

class Matcher {
 public:
  Matcher(std::string_view input, bool prefix) : in_(input), prefix_(prefix) {}

  // Every q such that e matches input[from, q), plus kOff in prefix mode if
  // input[from, end) is a prefix of a longer string of e's language.
  Positions Ends(const Expr& e, size_t from) const {
    if (from == kOff) return Productive(e) ? Positions{kOff} : Positions{};
    switch (e.kind()) {
      case Expr::Kind::kNever: return {};
      case Expr::Kind::kEmpty: return {from};
      case Expr::Kind::kSymbols: {
        if (from == in_.size()) return Exhausted();
        const int symbol = static_cast<uint8_t>(in_[from]);
        return symbol >= e.lo() && symbol <= e.hi() ? Positions{from + 1} : Positions{};
      }
      case Expr::Kind::kSeq: {
        Positions at = {from};
        for (const Expr& item : e.items()) {
          Positions next;
          for (const size_t p : at) {
            const Positions ends = Ends(item, p);
            next.insert(ends.begin(), ends.end());
          }
          at = std::move(next);
        }
        return at;
      }
      case Expr::Kind::kAlt: {
        Positions all;
        for (const Expr& item : e.items()) {
          const Positions ends = Ends(item, from);
          all.insert(ends.begin(), ends.end());
        }
        return all;
      }
      case Expr::Kind::kRepeat: {
        const Expr& body = e.items()[0];
        return Repeat([&](size_t p) { return Ends(body, p); }, e.min(), e.max(), from);
      }
      case Expr::Kind::kStringBody:
        return Repeat([&](size_t p) { return OneCharacter(e.form(), p); }, e.min(), e.max(), from);
      case Expr::Kind::kRule: break;
    }
    throw Error("expr_reference: rules are not supported");
  }

 private:
  Positions Exhausted() const { return prefix_ ? Positions{kOff} : Positions{}; }

  // `step` repeated min..max times (max < 0: unbounded) from `from`.
  template <typename Step>
  Positions Repeat(const Step& step, int64_t min, int64_t max, size_t from) const {
    std::map<size_t, Positions> memo;
    const auto apply = [&](const Positions& starts) {
      Positions out;
      for (const size_t p : starts) {
        auto it = memo.find(p);
        if (it == memo.end()) it = memo.emplace(p, step(p)).first;
        out.insert(it->second.begin(), it->second.end());
      }
      return out;
    };
    // Exactly k rounds for k up to min. The positions are few, so the sets
    // reach a fixed point (or empty) long before a large min.
    Positions at = {from};
    for (int64_t k = 0; k < min && !at.empty(); ++k) {
      Positions next = apply(at);
      if (next == at) break;
      at = std::move(next);
    }
    // Then up to max - min more rounds, breadth first: a position first
    // reached in round k has the most rounds left there, so each position is
    // expanded once.
    Positions all = at, frontier = at;
    for (int64_t k = min; !frontier.empty() && (max < 0 || k < max); ++k) {
      Positions fresh;
      for (const size_t p : apply(frontier)) {
        if (all.insert(p).second) fresh.insert(p);
      }
      frontier = std::move(fresh);
    }
    return all;
  }

  // One character of a string body in `form` starting at p.
  Positions OneCharacter(StringForm form, size_t p) const {
    if (p == kOff) return {kOff};
    if (p == in_.size()) return Exhausted();
    const uint8_t lead = static_cast<uint8_t>(in_[p]);
    if (form == StringForm::kJson) {
      if (lead == '\\') return JsonEscape(p);
      if (lead == '"' || lead < 0x20) return {};
    }
    // Well-formed UTF-8: the length and the range of the second byte by the
    // lead byte; later bytes are 80-BF.
    size_t length = 0;
    uint8_t second_lo = 0x80, second_hi = 0xBF;
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) second_lo = 0xA0;
      if (lead == 0xED) second_hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) second_lo = 0x90;
      if (lead == 0xF4) second_hi = 0x8F;
    } else {
      return {};
    }
    for (size_t k = 1; k < length; ++k) {
      if (p + k == in_.size()) return Exhausted();
      const uint8_t b = static_cast<uint8_t>(in_[p + k]);
      if (b < (k == 1 ? second_lo : 0x80) || b > (k == 1 ? second_hi : 0xBF)) return {};
    }
    return {p + length};
  }

  // A JSON escape at p (in_[p] is the backslash): \" \\ \/ \b \f \n \r \t or
  // \uXXXX outside the surrogates.
  Positions JsonEscape(size_t p) const {
    if (p + 1 == in_.size()) return Exhausted();
    const char c = in_[p + 1];
    if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
      return {p + 2};
    }
    if (c != 'u') return {};
    uint32_t value = 0;
    int digits = 0;
    for (; digits < 4 && p + 2 + digits < in_.size(); ++digits) {
      const char h = in_[p + 2 + digits];
      const int d = h >= '0' && h <= '9' ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) return {};
      value = value * 16 + static_cast<uint32_t>(d);
    }
    // The values the digits so far can still become; a cut-off escape is a
    // prefix only if one of them is outside the surrogates.
    const uint32_t lo = value << (4 * (4 - digits));
    const uint32_t hi = lo + (1u << (4 * (4 - digits))) - 1;
    if (lo >= 0xD800 && hi <= 0xDFFF) return {};
    return digits == 4 ? Positions{p + 6} : Exhausted();
  }

  std::string_view in_;
  bool prefix_;
};

}  // namespace expr_reference

// Whether `e` (without kRule nodes) matches all of `bytes`.
inline bool ExprMatches(const Expr& e, std::string_view bytes) {
  return expr_reference::Matcher(bytes, false).Ends(e, 0).count(bytes.size()) > 0;
}

// Whether `bytes` is a prefix of some string of e's language.
inline bool ExprMatchesPrefix(const Expr& e, std::string_view bytes) {
  const expr_reference::Positions ends = expr_reference::Matcher(bytes, true).Ends(e, 0);
  return ends.count(bytes.size()) > 0 || ends.count(expr_reference::kOff) > 0;
}

}  // namespace dsv4::testing
