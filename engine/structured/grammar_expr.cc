#include "engine/structured/grammar_expr.h"

#include "loader/error.h"

namespace dsv4 {

struct Expr::Node {
  Kind kind = Kind::kNever;
  int lo = 0, hi = 0;
  std::vector<Expr> items;
  int64_t min = 0, max = 0;
  int rule = -1;
  StringForm form = StringForm::kJson;
};

Expr Expr::Never() {
  return Expr(std::make_shared<const Node>());
}

Expr Expr::Empty() {
  auto n = std::make_shared<Node>();
  n->kind = Kind::kEmpty;
  return Expr(std::move(n));
}

Expr Expr::Symbols(int lo, int hi) {
  if (lo < 0 || hi >= kSymbolCount || lo > hi) throw Error("grammar: symbol range out of order");
  auto n = std::make_shared<Node>();
  n->kind = Kind::kSymbols;
  n->lo = lo;
  n->hi = hi;
  return Expr(std::move(n));
}

Expr Expr::Literal(std::string_view bytes) {
  std::vector<Expr> parts;
  parts.reserve(bytes.size());
  for (const char c : bytes) parts.push_back(Byte(static_cast<uint8_t>(c)));
  return Seq(std::move(parts));
}

// Seq and Alt fold the trivial cases so that compilers can build freely:
// a Never part empties a sequence, Empty parts vanish, one part is itself.
Expr Expr::Seq(std::vector<Expr> parts) {
  std::vector<Expr> kept;
  for (Expr& p : parts) {
    if (p.kind() == Kind::kNever) return Never();
    if (p.kind() == Kind::kEmpty) continue;
    if (p.kind() == Kind::kSeq) {
      kept.insert(kept.end(), p.items().begin(), p.items().end());
    } else {
      kept.push_back(std::move(p));
    }
  }
  if (kept.empty()) return Empty();
  if (kept.size() == 1) return kept[0];
  auto n = std::make_shared<Node>();
  n->kind = Kind::kSeq;
  n->items = std::move(kept);
  return Expr(std::move(n));
}

Expr Expr::Alt(std::vector<Expr> options) {
  std::vector<Expr> kept;
  for (Expr& o : options) {
    if (o.kind() == Kind::kNever) continue;
    if (o.kind() == Kind::kAlt) {
      kept.insert(kept.end(), o.items().begin(), o.items().end());
    } else {
      kept.push_back(std::move(o));
    }
  }
  if (kept.empty()) return Never();
  if (kept.size() == 1) return kept[0];
  auto n = std::make_shared<Node>();
  n->kind = Kind::kAlt;
  n->items = std::move(kept);
  return Expr(std::move(n));
}

Expr Expr::Repeat(Expr body, int64_t min, int64_t max) {
  if (min < 0 || (max >= 0 && max < min)) throw Error("grammar: repeat bounds out of order");
  if (max == 0 || body.kind() == Kind::kEmpty) return Empty();
  if (body.kind() == Kind::kNever) return min == 0 ? Empty() : Never();
  if (min == 1 && max == 1) return body;
  auto n = std::make_shared<Node>();
  n->kind = Kind::kRepeat;
  n->items = {std::move(body)};
  n->min = min;
  n->max = max;
  return Expr(std::move(n));
}

Expr Expr::Rule(int rule) {
  if (rule < 0) throw Error("grammar: negative rule index");
  auto n = std::make_shared<Node>();
  n->kind = Kind::kRule;
  n->rule = rule;
  return Expr(std::move(n));
}

Expr Expr::StringBody(StringForm form, int64_t min, int64_t max) {
  if (min < 0 || (max >= 0 && max < min)) throw Error("grammar: string length bounds out of order");
  auto n = std::make_shared<Node>();
  n->kind = Kind::kStringBody;
  n->form = form;
  n->min = min;
  n->max = max;
  return Expr(std::move(n));
}

Expr::Kind Expr::kind() const { return node_->kind; }
int Expr::lo() const { return node_->lo; }
int Expr::hi() const { return node_->hi; }
const std::vector<Expr>& Expr::items() const { return node_->items; }
int64_t Expr::min() const { return node_->min; }
int64_t Expr::max() const { return node_->max; }
int Expr::rule() const { return node_->rule; }
StringForm Expr::form() const { return node_->form; }

}  // namespace dsv4
