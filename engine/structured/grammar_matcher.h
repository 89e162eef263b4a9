// Reads output bytes against a Grammar. A grammar may be ambiguous for a
// while (anyOf branches, a string that may end or go on), so the matcher
// keeps every way the input so far can be read: a set of rule stacks.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/structured/grammar.h"

namespace dsv4 {

struct MatchFrame {
  int32_t rule = 0;
  // kAutomaton: the state (in a frame below the top: where to go on once
  // the rule above completes). kStringBody: the position inside a character
  // (0 between characters).
  int32_t state = 0;
  // kRepeat: bodies begun; kStringBody: characters begun. Unbounded counts
  // stop at the minimum, so equal futures have equal frames.
  int64_t count = 0;
  auto operator<=>(const MatchFrame&) const = default;
};
using MatchStack = std::vector<MatchFrame>;  // bottom first

struct MatchSet {
  std::vector<MatchStack> stacks;  // each can read a symbol next; sorted, no repeats
  bool accepting = false;          // the input so far is a complete string of the root
  bool dead() const { return stacks.empty() && !accepting; }
  bool operator==(const MatchSet&) const = default;
};

// One symbol of a string body of `rule` read from frame `f` (updated);
// false when the symbol cannot come there.
bool StringBodyStep(const GrammarRule& rule, MatchFrame& f, int symbol);

class GrammarMatcher {
 public:
  // Frames deeper than this are dropped (nesting deeper than any schema
  // needs; it also ends left recursion).
  static constexpr size_t kMaxDepth = 256;

  explicit GrammarMatcher(const Grammar& grammar);  // throws what Grammar::Check throws
  const Grammar& grammar() const { return grammar_; }

  MatchSet Start() const;
  MatchSet Step(const MatchSet& set, int symbol) const;
  // `bytes` one by one; false (and `set` dead) once one cannot be read.
  bool Advance(MatchSet& set, std::string_view bytes) const;

  // The stack's top frame is a string body between characters.
  bool AtStringBoundary(const MatchStack& stack) const;
  // What follows once that string body ends here (whatever its count).
  MatchSet AfterString(const MatchStack& stack) const;

 private:
  class Expander;
  const Grammar& grammar_;
};

}  // namespace dsv4
