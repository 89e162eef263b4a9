#include "engine/structured/output_constraint.h"

#include "engine/structured/json_schema.h"
#include "engine/structured/tool_call_grammar.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

constexpr std::string_view kBlockLead = "\n\n<";  // what precedes ｜DSML｜tool_calls

// Every token of the vocabulary but `banned` (when it has one).
void AllBut(const VocabularyIndex& vocabulary, const std::optional<int32_t>& banned, TokenMask& out) {
  const int64_t n = vocabulary.vocab_size();
  out.assign((n + 63) / 64, ~uint64_t{0});
  if (n % 64) out.back() = (uint64_t{1} << (n % 64)) - 1;
  if (banned) out[*banned >> 6] &= ~(uint64_t{1} << (*banned & 63));
}

}  // namespace

OutputConstraint::OutputConstraint(const VocabularyIndex& vocabulary, Grammar grammar, bool free_until_dsml)
    : vocabulary_(vocabulary),
      grammar_(std::move(grammar)),
      matcher_(grammar_),
      masker_(vocabulary_, matcher_),
      free_until_dsml_(free_until_dsml) {
  if (const std::optional<int64_t> bytes = grammar_.MaxLength(); bytes && !free_until_dsml_) max_tokens_ = *bytes + 1;
}

ConstraintCompiler::ConstraintCompiler(const Tokenizer& tokenizer, int64_t vocab_size)
    : vocabulary_(tokenizer, vocab_size) {}

std::shared_ptr<const OutputConstraint> ConstraintCompiler::Compile(const OutputSpec& spec) {
  const bool tools = spec.tools != OutputSpec::Tools::kNone;
  if (!spec.Constrains() && spec.tools != OutputSpec::Tools::kAuto) return nullptr;
  const std::string key = std::to_string(static_cast<int>(spec.format)) + "/" +
                          std::to_string(static_cast<int>(spec.tools)) + "/" + spec.function + "/" + (spec.parallel_calls ? "p" : "1") + "/" +
                          spec.schema.dump() + "/" + (tools ? spec.tool_list.dump() : "");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto hit = cache_.find(key);
    if (hit != cache_.end()) {
      recent_.splice(recent_.begin(), recent_, hit->second.second);
      return hit->second.first;
    }
  }
  Grammar grammar;
  const int root = grammar.AddRule();
  std::vector<Expr> answers;
  if (spec.format != OutputSpec::Format::kText) {
    JsonSchemaCompiler schemas(grammar, spec.schema, "response_format.json_schema.schema");
    const Expr value = spec.format == OutputSpec::Format::kJsonObject ? schemas.AnyObject() : schemas.Value(spec.schema, "");
    const Expr ws = JsonSchemaCompiler::Whitespace();
    answers.push_back(Expr::Seq({ws, value, ws}));
  }
  if (tools) {
    const std::optional<std::string> named = spec.tools == OutputSpec::Tools::kNamed ? std::optional(spec.function) : std::nullopt;
    const Expr calls = ToolCallsExpr(grammar, spec.tool_list, named, spec.parallel_calls);
    // Forced calls are the whole answer; auto beside a JSON answer is one
    // of the two.
    if (spec.tools != OutputSpec::Tools::kAuto) answers.clear();
    answers.push_back(calls);
  }
  grammar.Define(root, Expr::Alt(std::move(answers)));
  const bool free = spec.tools == OutputSpec::Tools::kAuto && spec.format == OutputSpec::Format::kText;
  auto compiled = std::make_shared<const OutputConstraint>(vocabulary_, std::move(grammar), free);
  if (compiled->matcher().Start().dead()) throw Error("response_format: no output satisfies the schema");
  std::lock_guard<std::mutex> lock(mutex_);
  if (!cache_.count(key)) {
    recent_.push_front(key);
    cache_.emplace(key, std::make_pair(compiled, recent_.begin()));
    if (cache_.size() > kCacheEntries) {
      cache_.erase(recent_.back());
      recent_.pop_back();
    }
  }
  return compiled;
}

ConstraintState::ConstraintState(std::shared_ptr<const OutputConstraint> constraint)
    : constraint_(std::move(constraint)), free_(constraint_->free_until_dsml()) {
  if (!free_) set_ = constraint_->matcher().Start();
}

void ConstraintState::Allowed(TokenMask& out) const {
  const VocabularyIndex& vocabulary = constraint_->vocabulary();
  if (!free_) {
    constraint_->masker().Allowed(set_, out);
    return;
  }
  // Free text: anything but a block opened where the format cannot parse it.
  AllBut(vocabulary, tail_.ends_with(kBlockLead) ? std::optional<int32_t>() : vocabulary.dsml_token(), out);
}

void ConstraintState::AllowedInReasoning(TokenMask& out) const {
  AllBut(constraint_->vocabulary(), constraint_->vocabulary().eos_token(), out);
}

void ConstraintState::Accept(int32_t token) {
  const VocabularyIndex& vocabulary = constraint_->vocabulary();
  const GrammarMatcher& matcher = constraint_->matcher();
  if (free_) {
    if (token == vocabulary.dsml_token()) {
      if (!tail_.ends_with(kBlockLead)) throw Error("the tool-call token came outside a tool-call block");
      set_ = matcher.Start();
      matcher.Advance(set_, kBlockLead);
      set_ = matcher.Step(set_, kDsmlSymbol);
      free_ = false;
      return;
    }
    tail_ += vocabulary.bytes(token);
    if (tail_.size() > kBlockLead.size()) tail_.erase(0, tail_.size() - kBlockLead.size());
    return;
  }
  bool ok;
  if (token == vocabulary.eos_token()) {
    ok = set_.accepting;
    set_ = MatchSet();
  } else if (token == vocabulary.dsml_token()) {
    set_ = matcher.Step(set_, kDsmlSymbol);
    ok = !set_.dead();
  } else {
    const std::string& bytes = vocabulary.bytes(token);
    ok = !bytes.empty() && matcher.Advance(set_, bytes);
  }
  if (!ok) throw Error("token " + std::to_string(token) + " does not continue the structured output");
}

}  // namespace dsv4
