// dsv4 render [-t TOKENIZER.json] [--input FILE]
// JSONL rows {"messages": [...], "mode": "chat|think|think-max"} in, the same
// rows with "prompt" (the official encoding, spec §7) and, with -t, "ids" out.
#include <optional>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/jsonl_rows.h"
#include "engine/text/chat_format.h"
#include "engine/text/python_json.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

int RunRender(int argc, char** argv) {
  cxxopts::Options options(argv[0],
                           "JSONL on stdin (or --input): rows {\"messages\": [...], \"mode\": \"chat|think|think-max\"} "
                           "(mode defaults to chat) get \"prompt\" added, the exact text of DeepSeek-V4's official "
                           "chat encoding, and with -t also its \"ids\". Other fields and their order are kept.");
  options.add_options()
      ("t,tokenizer", "tokenizer.json: also add the prompt's token ids", cxxopts::value<std::string>())
      ("input", "JSONL file to read instead of stdin", cxxopts::value<std::string>()->default_value(""));
  const auto args = ParseOptions(options, argc, argv);
  std::optional<Tokenizer> tokenizer;
  if (args.count("tokenizer")) tokenizer = Tokenizer::FromFile(args["tokenizer"].as<std::string>());

  MapJsonlRows(args["input"].as<std::string>(), [&](const nlohmann::ordered_json& row, JsonFields& fields) {
    const auto messages = row.find("messages");
    if (messages == row.end()) throw Error("row has no \"messages\"");
    const auto mode = row.find("mode");
    if (mode != row.end() && !mode->is_string()) throw Error("\"mode\" must be \"chat\", \"think\" or \"think-max\"");
    const std::string prompt =
        RenderChat(*messages, mode == row.end() ? ReasoningMode::kChat : ParseReasoningMode(mode->get<std::string>()));
    fields.emplace_back("prompt", PythonJsonDumps(prompt));
    if (tokenizer) fields.emplace_back("ids", IdsJson(tokenizer->Encode(prompt)));
  });
  return 0;
}

static RegisterCommand kRegister("render", "conversations -> prompt text (and ids), JSONL in and out", &RunRender);

}  // namespace
}  // namespace dsv4::cli
