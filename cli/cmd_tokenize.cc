// dsv4 tokenize -t TOKENIZER.json [--input FILE] [--decode]
// JSONL rows with "text" in, the same rows with "ids" added out (--decode:
// "ids" in, "text" added). Rows are encoded in parallel, output keeps their order.
#include <string>
#include <vector>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/jsonl_rows.h"
#include "engine/text/python_json.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

int RunTokenize(int argc, char** argv) {
  cxxopts::Options options(argv[0],
                           "JSONL on stdin (or --input): rows with \"text\" get \"ids\" added; with --decode, rows with "
                           "\"ids\" get \"text\" added. Other fields and their order are kept. No BOS is added.\n"
                           "Input text must be valid UTF-8 (a JSON parse error names the line otherwise); decoded "
                           "text has ill-formed byte sequences replaced by U+FFFD.");
  options.add_options()
      ("t,tokenizer", "tokenizer.json (Hugging Face format)", cxxopts::value<std::string>())
      ("input", "JSONL file to read instead of stdin", cxxopts::value<std::string>()->default_value(""))
      ("decode", "ids -> text instead of text -> ids");
  const auto args = ParseOptions(options, argc, argv);
  if (!args.count("tokenizer")) throw Error("-t/--tokenizer is required");
  const Tokenizer tokenizer = Tokenizer::FromFile(args["tokenizer"].as<std::string>());
  const std::string input = args["input"].as<std::string>();

  if (args.count("decode")) {
    MapJsonlRows(input, [&](const nlohmann::ordered_json& row, JsonFields& fields) {
      const auto it = row.find("ids");
      if (it == row.end() || !it->is_array()) throw Error("row has no \"ids\" array");
      std::vector<int32_t> ids;
      ids.reserve(it->size());
      for (const auto& id : *it) {
        if (!id.is_number_integer()) throw Error("\"ids\" must hold integers, found " + id.dump());
        const int64_t value = id.get<int64_t>();
        if (value < 0 || value >= tokenizer.VocabSize()) {
          throw Error("token id " + std::to_string(value) + " is out of range (vocabulary size " +
                      std::to_string(tokenizer.VocabSize()) + ")");
        }
        ids.push_back(static_cast<int32_t>(value));
      }
      fields.emplace_back("text", PythonJsonDumps(tokenizer.Decode(ids)));
    });
    return 0;
  }
  MapJsonlRows(input, [&](const nlohmann::ordered_json& row, JsonFields& fields) {
    const auto it = row.find("text");
    if (it == row.end() || !it->is_string()) throw Error("row has no \"text\" string");
    fields.emplace_back("ids", IdsJson(tokenizer.Encode(it->get_ref<const std::string&>())));
  });
  return 0;
}

static RegisterCommand kRegister("tokenize", "text <-> token ids, JSONL in and out (Hugging Face tokenizer.json)",
                                 &RunTokenize);

}  // namespace
}  // namespace dsv4::cli
