#include "engine/structured/grammar_matcher.h"

#include <algorithm>
#include <optional>

#include "engine/text/utf8.h"

namespace dsv4 {
namespace {

// Positions inside a string body character, packed into MatchFrame::state:
// kind in the top byte; for UTF-8, the continuation bytes still due and the
// range of the next one; for \u, the hex digits read and their value.
constexpr int32_t kBoundary = 0;
constexpr int32_t kUtf8 = 1, kEscape = 2, kUnicodeEscape = 3;

int32_t Utf8State(int remaining, int lo, int hi) { return (kUtf8 << 24) | (remaining << 16) | (lo << 8) | hi; }
int32_t UnicodeState(int digits, int value) { return (kUnicodeEscape << 24) | (digits << 16) | value; }

int HexValue(int b) {
  if (b >= '0' && b <= '9') return b - '0';
  if (b >= 'a' && b <= 'f') return b - 'a' + 10;
  if (b >= 'A' && b <= 'F') return b - 'A' + 10;
  return -1;
}

}  // namespace

bool StringBodyStep(const GrammarRule& rule, MatchFrame& f, int symbol) {
  if (symbol >= 256) return false;
  const int b = symbol;
  const int kind = f.state >> 24;
  if (kind == kBoundary) {
    if (rule.max >= 0 && f.count >= rule.max) return false;
    int32_t next = kBoundary;
    if (b >= 0x80) {
      const std::optional<Utf8Lead> lead = Utf8LeadByte(static_cast<unsigned char>(b));
      if (!lead) return false;
      next = Utf8State(lead->length - 1, lead->low, lead->high);
    } else if (rule.form == StringForm::kJson) {
      if (b == '"' || b < 0x20) return false;
      if (b == '\\') next = kEscape << 24;
    }
    f.state = next;
    f.count = rule.max < 0 ? std::min(f.count + 1, rule.min) : f.count + 1;
    return true;
  }
  if (kind == kUtf8) {
    const int remaining = (f.state >> 16) & 0xFF, lo = (f.state >> 8) & 0xFF, hi = f.state & 0xFF;
    if (b < lo || b > hi) return false;
    f.state = remaining == 1 ? kBoundary : Utf8State(remaining - 1, 0x80, 0xBF);
    return true;
  }
  if (kind == kEscape) {
    if (b == 'u') {
      f.state = UnicodeState(0, 0);
      return true;
    }
    if (b != '"' && b != '\\' && b != '/' && b != 'b' && b != 'f' && b != 'n' && b != 'r' && b != 't') return false;
    f.state = kBoundary;
    return true;
  }
  const int digit = HexValue(b);
  if (digit < 0) return false;
  const int digits = ((f.state >> 16) & 0xFF) + 1;
  const int value = ((f.state & 0xFFFF) << 4) | digit;
  // Surrogates (D800-DFFF) are refused as soon as their first byte shows.
  if (digits >= 2) {
    const int high = value >> (4 * (digits - 2));
    if (high >= 0xD8 && high <= 0xDF) return false;
  }
  f.state = digits == 4 ? kBoundary : UnicodeState(digits, value);
  return true;
}

// Follows calls, completions and repeats from a stack until every way leads
// to a frame that reads a symbol (kept) or completes the root (accepting).
class GrammarMatcher::Expander {
 public:
  Expander(const Grammar& grammar, MatchSet& out) : rules_(grammar.rules()), out_(out) {}

  void Expand(MatchStack s) {
    if (s.size() > kMaxDepth) return;
    if (std::find(visited_.begin(), visited_.end(), s) != visited_.end()) return;
    visited_.push_back(s);
    const MatchFrame top = s.back();
    const GrammarRule& rule = rules_[top.rule];
    switch (rule.kind) {
      case GrammarRule::Kind::kAutomaton: {
        const GrammarState& state = rule.states[top.state];
        if (state.consumes) out_.stacks.push_back(s);
        for (const GrammarEdge& e : state.edges) {
          if (e.kind != GrammarEdge::Kind::kCall) continue;
          MatchStack call = s;
          call.back().state = e.target;
          call.push_back({e.rule, 0, 0});
          Expand(std::move(call));
        }
        if (state.final) Pop(std::move(s));
        break;
      }
      case GrammarRule::Kind::kRepeat: {
        if (rule.max < 0 || top.count < rule.max) {
          MatchStack again = s;
          again.back().count = rule.max < 0 ? std::min(top.count + 1, rule.min) : top.count + 1;
          again.push_back({rule.body, 0, 0});
          Expand(std::move(again));
        }
        if (top.count >= rule.min) Pop(std::move(s));
        break;
      }
      case GrammarRule::Kind::kStringBody: {
        const bool boundary = top.state == kBoundary;
        if (!boundary || rule.max < 0 || top.count < rule.max) out_.stacks.push_back(s);
        if (boundary && top.count >= rule.min) Pop(std::move(s));
        break;
      }
    }
  }

  void Pop(MatchStack s) {
    s.pop_back();
    if (s.empty()) {
      out_.accepting = true;
    } else {
      Expand(std::move(s));
    }
  }

  void Finish() {
    std::sort(out_.stacks.begin(), out_.stacks.end());
    out_.stacks.erase(std::unique(out_.stacks.begin(), out_.stacks.end()), out_.stacks.end());
  }

 private:
  const std::vector<GrammarRule>& rules_;
  MatchSet& out_;
  std::vector<MatchStack> visited_;
};

GrammarMatcher::GrammarMatcher(const Grammar& grammar) : grammar_(grammar) { grammar_.Check(); }

MatchSet GrammarMatcher::Start() const {
  MatchSet out;
  Expander expander(grammar_, out);
  expander.Expand({{0, 0, 0}});
  expander.Finish();
  return out;
}

MatchSet GrammarMatcher::Step(const MatchSet& set, int symbol) const {
  MatchSet out;
  Expander expander(grammar_, out);
  const std::vector<GrammarRule>& rules = grammar_.rules();
  for (const MatchStack& s : set.stacks) {
    const MatchFrame& top = s.back();
    const GrammarRule& rule = rules[top.rule];
    if (rule.kind == GrammarRule::Kind::kStringBody) {
      MatchFrame f = top;
      if (!StringBodyStep(rule, f, symbol)) continue;
      MatchStack next = s;
      next.back() = f;
      expander.Expand(std::move(next));
      continue;
    }
    for (const GrammarEdge& e : rule.states[top.state].edges) {
      if (e.kind != GrammarEdge::Kind::kSymbols || symbol < e.lo || symbol > e.hi) continue;
      MatchStack next = s;
      next.back().state = e.target;
      expander.Expand(std::move(next));
    }
  }
  expander.Finish();
  return out;
}

bool GrammarMatcher::Advance(MatchSet& set, std::string_view bytes) const {
  for (const char c : bytes) {
    set = Step(set, static_cast<uint8_t>(c));
    if (set.dead()) return false;
  }
  return true;
}

bool GrammarMatcher::AtStringBoundary(const MatchStack& stack) const {
  const MatchFrame& top = stack.back();
  return grammar_.rules()[top.rule].kind == GrammarRule::Kind::kStringBody && top.state == kBoundary;
}

MatchSet GrammarMatcher::AfterString(const MatchStack& stack) const {
  MatchSet out;
  Expander expander(grammar_, out);
  expander.Pop(stack);
  expander.Finish();
  return out;
}

}  // namespace dsv4
