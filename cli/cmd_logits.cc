// dsv4 logits: the model's logits for a prompt (one prefill, chunks allowed)
// and for decode tokens fed one at a time, as JSON.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "engine/runtime/progress_line.h"
#include "engine/runtime/sequence_runner.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

void WriteRows(std::ostream& out, const std::vector<float>& logits, int64_t vocab) {
  out << '[';
  char buffer[32];
  for (size_t r = 0; r < logits.size() / vocab; ++r) {
    out << (r ? ",\n[" : "\n[");
    for (int64_t i = 0; i < vocab; ++i) {
      std::snprintf(buffer, sizeof buffer, i ? ",%.9g" : "%.9g", logits[r * vocab + i]);
      out << buffer;
    }
    out << ']';
  }
  out << ']';
}

int RunLogits(int argc, char** argv) {
  cxxopts::Options options("dsv4 logits", "Logits of a prompt and of decode tokens, as JSON");
  AddModelOptions(options);
  options.add_options()
      ("prompt-ids", "Prompt token ids: 1,2,3 or @FILE", cxxopts::value<std::string>())
      ("decode-ids", "Tokens fed one at a time after the prompt", cxxopts::value<std::string>())
      ("positions", "all | last: which prompt positions to write", cxxopts::value<std::string>()->default_value("all"))
      ("out", "Output JSON file", cxxopts::value<std::string>());
  auto args = ParseOptions(options, argc, argv);
  if (!args.count("out")) throw Error("--out FILE.json is required");
  const std::string positions = args["positions"].as<std::string>();
  if (positions != "all" && positions != "last") throw Error("--positions must be all or last");
  auto prompt = args.count("prompt-ids") ? ParseIds(args["prompt-ids"].as<std::string>(), "--prompt-ids")
                                               : std::vector<int32_t>{};
  const auto decode = args.count("decode-ids") ? ParseIds(args["decode-ids"].as<std::string>(), "--decode-ids")
                                               : std::vector<int32_t>{};
  if (prompt.empty() && !args.count("load-session")) {
    throw Error("--prompt-ids is required (or --load-session to continue a saved sequence)");
  }

  // Before the weights load, which can take minutes.
  const int64_t file_vocab = ConfigFromArgs(args).vocab_size;
  CheckTokenIds(prompt, file_vocab, "--prompt-ids");
  CheckTokenIds(decode, file_vocab, "--decode-ids");

  LoadedModel loaded = LoadModel(args);
  const int64_t vocab = loaded.model().config().vocab_size;
  // With --session-dir the prompt loses the prefix restored from a session:
  // prefill_logits then cover the positions computed in this run.
  SessionSequence sequence(args, loaded, prompt);
  SequenceRunner& runner = sequence.runner();
  const int64_t first_position = runner.length();
  std::vector<float> prefill = runner.Feed(prompt, positions == "all");
  if (prompt.empty() && !args.count("load-session") && positions == "last") prefill = runner.last_logits();
  std::vector<float> decode_logits;
  ProgressLine progress;
  for (size_t j = 0; j < decode.size(); ++j) {
    const std::vector<float> row = runner.Feed({decode[j]}, false);
    decode_logits.insert(decode_logits.end(), row.begin(), row.end());
    progress.Update(j + 1 == decode.size(), "decode %zu/%zu, %.1f ms/token", j + 1, decode.size(),
                    1e3 * progress.Seconds() / (j + 1));
  }
  std::fprintf(stderr, "%lld tokens; KV cache %.1f MB in RAM, %.1f MB spilled\n",
               static_cast<long long>(runner.length()), runner.state().kv_ram_bytes() / 1e6,
               runner.state().kv_spilled_bytes() / 1e6);
  sequence.Finish();

  // A file is written beside the target and renamed, so a failure never
  // leaves half a file; a device or pipe (/dev/null, /dev/stdout) is
  // written in place, since renaming over it would replace it.
  const std::string out_path = args["out"].as<std::string>();
  namespace fs = std::filesystem;
  const fs::file_status target = fs::status(out_path);
  const bool in_place = fs::exists(target) && !fs::is_regular_file(target);
  const std::string write_path = in_place ? out_path : out_path + ".partial";
  {
    std::ofstream out(write_path);
    if (!out) throw Error(out_path + ": cannot write");
    out << "{\"prefill_first_position\": " << first_position << ",\n\"prefill_logits\": ";
    WriteRows(out, prefill, vocab);
    out << ",\n\"decode_logits\": ";
    WriteRows(out, decode_logits, vocab);
    out << "}\n";
    out.flush();
    if (!out) {
      if (!in_place) fs::remove(write_path);
      throw Error(out_path + ": write failed (disk full?)");
    }
  }
  if (!in_place) fs::rename(write_path, out_path);
  return 0;
}

const RegisterCommand kRegister("logits", "Logits of a prompt and decode tokens as JSON", &RunLogits);

}  // namespace
}  // namespace dsv4::cli
