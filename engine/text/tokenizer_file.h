// Reads a Hugging Face tokenizer.json in one pass. The vocabulary (128,000
// entries) and the merges (127,741) go straight into vectors; only the small
// rest becomes a JSON tree. Building the whole tree with nlohmann's parser
// takes ~115 ms; this takes ~15 ms, and loading is on the critical path of
// every `dsv4 tokenize` run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

struct TokenizerFile {
  std::vector<std::pair<std::string, int64_t>> vocab;          // model.vocab, in file order
  std::vector<std::pair<std::string, std::string>> merges;     // model.merges, in rank order
  bool has_vocab = false, has_merges = false;
  nlohmann::json rest;  // everything else (model.vocab and model.merges left out)
};

// Throws dsv4::Error naming `source` (and the byte offset) on invalid JSON or
// invalid UTF-8, a vocab value that is not an integer, or a merge that is
// neither "a b" nor ["a", "b"].
TokenizerFile ReadTokenizerFile(std::string_view json_text, const std::string& source);

}  // namespace dsv4
