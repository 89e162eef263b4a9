// A request's structured output, compiled once and shared by every
// sequence that asks for it: JSON (any object, or one valid against a JSON
// Schema) and DSML tool calls (forced, or constrained once the model opens
// a block). ConstraintState follows one sequence's answer through it.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/structured/grammar.h"
#include "engine/structured/grammar_matcher.h"
#include "engine/structured/token_masker.h"
#include "engine/structured/vocabulary_index.h"

namespace dsv4 {

struct OutputSpec {
  enum class Format { kText, kJsonObject, kJsonSchema };
  enum class Tools {
    kNone,      // no tools, or tool_choice "none" (the DSML token is banned elsewhere)
    kAuto,      // free until the model writes "\n\n<｜DSML｜", then the block's grammar
    kRequired,  // the answer is a tool-call block
    kNamed,     // the answer is one call of `function`
  };
  Format format = Format::kText;
  nlohmann::ordered_json schema;  // kJsonSchema
  Tools tools = Tools::kNone;
  nlohmann::ordered_json tool_list;  // the request's `tools` (not kNone)
  std::string function;              // kNamed
  bool parallel_calls = true;        // more than one invoke in a block (parallel_tool_calls)
  // The answer is nothing but the grammar's (not kAuto with kText).
  bool Constrains() const { return format != Format::kText || tools == Tools::kRequired || tools == Tools::kNamed; }
};

class OutputConstraint {
 public:
  OutputConstraint(const VocabularyIndex& vocabulary, Grammar grammar, bool free_until_dsml);
  const VocabularyIndex& vocabulary() const { return vocabulary_; }
  const GrammarMatcher& matcher() const { return matcher_; }
  const TokenMasker& masker() const { return masker_; }
  // Free text until the model opens a tool-call block (tool_choice auto
  // with a text answer); the grammar then starts at that block.
  bool free_until_dsml() const { return free_until_dsml_; }
  // Tokens of the longest constrained answer, end of sequence included
  // (every token is at least one byte); nullopt when unbounded.
  std::optional<int64_t> max_tokens() const { return max_tokens_; }

 private:
  const VocabularyIndex& vocabulary_;
  Grammar grammar_;
  GrammarMatcher matcher_;
  TokenMasker masker_;
  bool free_until_dsml_;
  std::optional<int64_t> max_tokens_;
};

// Compiles specs over one vocabulary and keeps the recent ones (a schema
// compiles once however many requests use it).
class ConstraintCompiler {
 public:
  ConstraintCompiler(const Tokenizer& tokenizer, int64_t vocab_size);
  const VocabularyIndex& vocabulary() const { return vocabulary_; }
  // nullptr when the spec constrains nothing. Throws dsv4::Error naming the
  // schema keyword or tool at fault. Thread-safe.
  std::shared_ptr<const OutputConstraint> Compile(const OutputSpec& spec);

 private:
  static constexpr size_t kCacheEntries = 64;
  VocabularyIndex vocabulary_;
  std::mutex mutex_;
  std::list<std::string> recent_;
  std::unordered_map<std::string, std::pair<std::shared_ptr<const OutputConstraint>, std::list<std::string>::iterator>>
      cache_;
};

// One sequence's position in its constraint.
class ConstraintState {
 public:
  explicit ConstraintState(std::shared_ptr<const OutputConstraint> constraint);
  // The tokens that may come next in the answer (vocabulary-wide, overwritten).
  void Allowed(TokenMask& out) const;
  // Before the answer, in the reasoning: anything but the end of sequence
  // (the answer must come).
  void AllowedInReasoning(TokenMask& out) const;
  // A generated token; throws dsv4::Error if Allowed did not allow it.
  void Accept(int32_t token);

 private:
  std::shared_ptr<const OutputConstraint> constraint_;
  bool free_;
  std::string tail_;  // free text: its last bytes (a block opens after "\n\n<")
  MatchSet set_;
};

}  // namespace dsv4
