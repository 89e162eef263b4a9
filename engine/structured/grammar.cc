#include "engine/structured/grammar.h"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>
#include <utility>

#include "loader/error.h"

namespace dsv4 {
namespace {

// Repeats of small bodies up to this many times are spelled out as states;
// larger ones become counted rules.
constexpr int64_t kInlineRepeat = 4;
constexpr int kInlineBodySize = 48;

// Expression nodes under e, counted up to `limit`.
int ExprSize(const Expr& e, int limit) {
  int size = 1;
  for (const Expr& item : e.items()) {
    if (size >= limit) break;
    size += ExprSize(item, limit - size);
  }
  return size;
}

// Thompson construction with epsilon moves, then epsilon removal into a
// GrammarRule automaton.
class AutomatonBuilder {
 public:
  using SpecialRule = std::function<int(GrammarRule)>;
  using NewRule = std::function<int(const Expr&)>;
  AutomatonBuilder(SpecialRule special, NewRule define) : special_(std::move(special)), define_(std::move(define)) {}

  std::vector<GrammarState> Build(const Expr& e) {
    const int start = New(), end = New();
    const auto [a, b] = Fragment(e);
    nodes_[start].eps.push_back(a);
    nodes_[b].eps.push_back(end);
    return RemoveEpsilons(start, end);
  }

 private:
  struct Node {
    std::vector<GrammarEdge> edges;
    std::vector<int> eps;
  };

  int New() {
    nodes_.emplace_back();
    return static_cast<int>(nodes_.size()) - 1;
  }

  std::pair<int, int> Fragment(const Expr& e) {
    const int s = New(), t = New();
    switch (e.kind()) {
      case Expr::Kind::kNever:
        break;
      case Expr::Kind::kEmpty:
        nodes_[s].eps.push_back(t);
        break;
      case Expr::Kind::kSymbols: {
        GrammarEdge edge;
        edge.lo = static_cast<int16_t>(e.lo());
        edge.hi = static_cast<int16_t>(e.hi());
        edge.target = t;
        nodes_[s].edges.push_back(edge);
        break;
      }
      case Expr::Kind::kSeq: {
        int cur = s;
        for (const Expr& part : e.items()) {
          const auto [a, b] = Fragment(part);
          nodes_[cur].eps.push_back(a);
          cur = b;
        }
        nodes_[cur].eps.push_back(t);
        break;
      }
      case Expr::Kind::kAlt:
        for (const Expr& option : e.items()) {
          const auto [a, b] = Fragment(option);
          nodes_[s].eps.push_back(a);
          nodes_[b].eps.push_back(t);
        }
        break;
      case Expr::Kind::kRule:
        Call(s, t, e.rule());
        break;
      case Expr::Kind::kStringBody: {
        GrammarRule rule;
        rule.kind = GrammarRule::Kind::kStringBody;
        rule.form = e.form();
        rule.min = e.min();
        rule.max = e.max();
        Call(s, t, special_(std::move(rule)));
        break;
      }
      case Expr::Kind::kRepeat:
        Repeat(e, s, t);
        break;
    }
    return {s, t};
  }

  void Call(int from, int to, int rule) {
    GrammarEdge edge;
    edge.kind = GrammarEdge::Kind::kCall;
    edge.rule = rule;
    edge.target = to;
    nodes_[from].edges.push_back(edge);
  }

  void Repeat(const Expr& e, int s, int t) {
    const Expr& body = e.items()[0];
    const int64_t min = e.min(), max = e.max();
    const bool small = ExprSize(body, kInlineBodySize + 1) <= kInlineBodySize;
    if (small && min <= kInlineRepeat && (max < 0 || max <= kInlineRepeat)) {
      int cur = s;
      for (int64_t i = 0; i < min; ++i) {
        const auto [a, b] = Fragment(body);
        nodes_[cur].eps.push_back(a);
        cur = b;
      }
      if (max < 0) {  // a loop: body* after the required copies
        const auto [a, b] = Fragment(body);
        nodes_[cur].eps.push_back(a);
        nodes_[b].eps.push_back(a);
        nodes_[b].eps.push_back(t);
      } else {
        for (int64_t i = min; i < max; ++i) {
          const auto [a, b] = Fragment(body);
          nodes_[cur].eps.push_back(a);
          nodes_[cur].eps.push_back(t);
          cur = b;
        }
      }
      nodes_[cur].eps.push_back(t);
      return;
    }
    GrammarRule rule;
    rule.kind = GrammarRule::Kind::kRepeat;
    rule.body = define_(body);
    rule.min = min;
    rule.max = max;
    Call(s, t, special_(std::move(rule)));
  }

  std::vector<GrammarState> RemoveEpsilons(int start, int end) {
    // closure[x]: the nodes reachable from x by epsilon moves (x included).
    const int n = static_cast<int>(nodes_.size());
    std::vector<std::vector<int>> closure(n);
    for (int x = 0; x < n; ++x) {
      std::vector<char> seen(n, 0);
      std::vector<int> work = {x};
      seen[x] = 1;
      while (!work.empty()) {
        const int y = work.back();
        work.pop_back();
        closure[x].push_back(y);
        for (const int z : nodes_[y].eps) {
          if (!seen[z]) {
            seen[z] = 1;
            work.push_back(z);
          }
        }
      }
    }
    std::vector<int> index(n, -1);
    std::vector<int> order = {start};
    index[start] = 0;
    std::vector<GrammarState> states;
    for (size_t i = 0; i < order.size(); ++i) {
      GrammarState state;
      for (const int y : closure[order[i]]) {
        if (y == end) state.final = true;
        for (GrammarEdge edge : nodes_[y].edges) {
          if (index[edge.target] < 0) {
            index[edge.target] = static_cast<int>(order.size());
            order.push_back(edge.target);
          }
          edge.target = index[edge.target];
          state.edges.push_back(edge);
        }
      }
      std::sort(state.edges.begin(), state.edges.end(), [](const GrammarEdge& a, const GrammarEdge& b) {
        return std::tie(a.kind, a.lo, a.hi, a.rule, a.target) < std::tie(b.kind, b.lo, b.hi, b.rule, b.target);
      });
      state.edges.erase(std::unique(state.edges.begin(), state.edges.end(),
                                    [](const GrammarEdge& a, const GrammarEdge& b) {
                                      return std::tie(a.kind, a.lo, a.hi, a.rule, a.target) ==
                                             std::tie(b.kind, b.lo, b.hi, b.rule, b.target);
                                    }),
                        state.edges.end());
      state.consumes = std::any_of(state.edges.begin(), state.edges.end(),
                                   [](const GrammarEdge& e) { return e.kind == GrammarEdge::Kind::kSymbols; });
      states.push_back(std::move(state));
    }
    return states;
  }

  SpecialRule special_;
  NewRule define_;
  std::vector<Node> nodes_;
};

}  // namespace

int Grammar::AddRule() {
  rules_.emplace_back();
  defined_.push_back(false);
  return static_cast<int>(rules_.size()) - 1;
}

int Grammar::AddSpecialRule(GrammarRule rule) {
  // String bodies of the same shape share one rule.
  if (rule.kind == GrammarRule::Kind::kStringBody) {
    for (size_t i = 0; i < rules_.size(); ++i) {
      const GrammarRule& r = rules_[i];
      if (r.kind == rule.kind && r.form == rule.form && r.min == rule.min && r.max == rule.max) {
        return static_cast<int>(i);
      }
    }
  }
  rules_.push_back(std::move(rule));
  defined_.push_back(true);
  return static_cast<int>(rules_.size()) - 1;
}

void Grammar::Define(int rule, const Expr& body) {
  if (rule < 0 || rule >= static_cast<int>(rules_.size())) throw Error("grammar: defining an undeclared rule");
  AutomatonBuilder builder([this](GrammarRule r) { return AddSpecialRule(std::move(r)); },
                           [this](const Expr& e) {
                             const int r = AddRule();
                             Define(r, e);
                             return r;
                           });
  std::vector<GrammarState> states = builder.Build(body);
  rules_[rule].kind = GrammarRule::Kind::kAutomaton;
  rules_[rule].states = std::move(states);
  defined_[rule] = true;
}

void Grammar::Check() const {
  if (rules_.empty()) throw Error("grammar: no rules");
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (!defined_[i]) throw Error("grammar: rule " + std::to_string(i) + " is declared but not defined");
    for (const GrammarState& s : rules_[i].states) {
      for (const GrammarEdge& e : s.edges) {
        if (e.kind == GrammarEdge::Kind::kCall && (e.rule < 0 || e.rule >= static_cast<int>(rules_.size()))) {
          throw Error("grammar: a call to an unknown rule");
        }
      }
    }
  }
}

std::optional<int64_t> Grammar::MaxLength() const {
  constexpr int64_t kUnbounded = -1;
  constexpr int64_t kPending = -2;
  std::vector<int64_t> memo(rules_.size(), kPending - 1);  // kPending - 1: not computed
  std::function<int64_t(int)> rule_max = [&](int r) -> int64_t {
    if (memo[r] == kPending) return kUnbounded;  // recursion
    if (memo[r] != kPending - 1) return memo[r];
    memo[r] = kPending;
    const GrammarRule& rule = rules_[r];
    int64_t result = 0;
    if (rule.kind == GrammarRule::Kind::kStringBody) {
      // A JSON character is at most 6 bytes (\uXXXX), a raw one 4.
      result = rule.max < 0 ? kUnbounded : rule.max * (rule.form == StringForm::kJson ? 6 : 4);
    } else if (rule.kind == GrammarRule::Kind::kRepeat) {
      const int64_t body = rule_max(rule.body);
      result = body == kUnbounded ? kUnbounded : (rule.max < 0 ? (body == 0 ? 0 : kUnbounded) : rule.max * body);
    } else {
      // Longest path to a final state; a cycle on the way is unbounded.
      const size_t n = rule.states.size();
      std::vector<int64_t> longest(n, kPending - 1);
      std::function<int64_t(int)> from = [&](int s) -> int64_t {
        if (longest[s] == kPending) return kUnbounded;
        if (longest[s] != kPending - 1) return longest[s];
        longest[s] = kPending;
        const GrammarState& state = rule.states[s];
        int64_t best = state.final ? 0 : -3;  // -3: no way to a final state
        for (const GrammarEdge& e : state.edges) {
          const int64_t step = e.kind == GrammarEdge::Kind::kCall ? rule_max(e.rule) : 1;
          const int64_t rest = from(e.target);
          if (rest == -3) continue;
          if (step == kUnbounded || rest == kUnbounded) {
            best = kUnbounded;
            break;
          }
          best = std::max(best, step + rest);
        }
        longest[s] = best;
        return best;
      };
      result = n == 0 ? 0 : from(0);
      if (result == -3) result = 0;
    }
    memo[r] = result;
    return result;
  };
  const int64_t root = rule_max(0);
  if (root == kUnbounded) return std::nullopt;
  return root;
}

}  // namespace dsv4
