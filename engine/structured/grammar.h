// A grammar compiled for matching: each rule an automaton over symbols
// (bytes and the ｜DSML｜ token) whose edges may call other rules, as in a
// recursive transition network. Counted repeats and string bodies are rules
// of their own whose frame keeps a count, so `maxLength: 10000` costs one
// rule, not ten thousand states.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/structured/grammar_expr.h"

namespace dsv4 {

struct GrammarEdge {
  // kCall: enter `rule`, continue at `target` once it completes.
  enum class Kind : uint8_t { kSymbols, kCall };
  Kind kind = Kind::kSymbols;
  int16_t lo = 0, hi = 0;  // kSymbols: the symbols [lo, hi]
  int32_t rule = -1;       // kCall
  int32_t target = 0;
};

struct GrammarState {
  std::vector<GrammarEdge> edges;
  bool final = false;  // the rule may complete here
  bool consumes = false;  // some edge reads a symbol
};

struct GrammarRule {
  enum class Kind : uint8_t {
    kAutomaton,   // `states`, starting at state 0
    kRepeat,      // `body` (a rule) min..max times
    kStringBody,  // min..max characters of a string body in `form`
  };
  Kind kind = Kind::kAutomaton;
  std::vector<GrammarState> states;
  int32_t body = -1;
  int64_t min = 0, max = -1;  // max < 0: unbounded
  StringForm form = StringForm::kJson;
};

class Grammar {
 public:
  // Declares a rule to be defined later (so definitions may refer to each
  // other, recursion included); returns its index for Expr::Rule.
  int AddRule();
  // Compiles `body` into `rule`. Every declared rule must be defined before
  // matching; the root is rule 0.
  void Define(int rule, const Expr& body);

  const std::vector<GrammarRule>& rules() const { return rules_; }
  // Throws dsv4::Error if a declared rule has no definition.
  void Check() const;

  // Upper bound of the bytes of any complete string of the root (the
  // ｜DSML｜ token counts as one), or nullopt when unbounded (an unbounded
  // repeat or string, or recursion).
  std::optional<int64_t> MaxLength() const;

 private:
  int AddSpecialRule(GrammarRule rule);
  std::vector<GrammarRule> rules_;
  std::vector<bool> defined_;
};

}  // namespace dsv4
