// dsv4 run: greedy generation from a prompt.
#include <cstdio>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "engine/sampler.h"
#include "engine/sequence_runner.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

int RunRun(int argc, char** argv) {
  cxxopts::Options options("dsv4 run", "Generate tokens greedily from a prompt");
  AddModelOptions(options);
  options.add_options()
      ("prompt-ids", "Prompt token ids: 1,2,3 or @FILE", cxxopts::value<std::string>())
      ("n,max-tokens", "Tokens to generate at most", cxxopts::value<int64_t>()->default_value("64"));
  auto args = ParseOptions(options, argc, argv);
  auto prompt = args.count("prompt-ids") ? ParseIds(args["prompt-ids"].as<std::string>(), "--prompt-ids")
                                         : std::vector<int32_t>{};
  if (prompt.empty() && !args.count("load-session")) {
    throw Error("--prompt-ids is required (or --load-session to continue a saved sequence)");
  }
  const int64_t max_tokens = args["max-tokens"].as<int64_t>();
  if (max_tokens < 0) throw Error("-n must be >= 0");

  LoadedModel loaded = LoadModel(args);
  const ModelConfig& config = loaded.model->config();
  SessionSequence sequence(args, loaded, prompt);
  SequenceRunner& runner = sequence.runner();
  if (!prompt.empty()) runner.Feed(prompt, false);
  std::vector<float> logits = runner.last_logits();
  std::string line;
  // Every generated token is fed back, the last one too, so that a saved
  // session ends exactly where the output ends.
  for (int64_t i = 0; i < max_tokens && runner.length() < config.max_position_embeddings; ++i) {
    const int32_t next = ArgMax(logits.data(), config.vocab_size);
    line += (line.empty() ? "" : ",") + std::to_string(next);
    logits = runner.Feed({next}, false);
    if (next == config.eos_token_id) break;
  }
  std::printf("%s\n", line.c_str());
  sequence.Finish();
  return 0;
}

const RegisterCommand kRegister("run", "Generate text or token ids from a prompt", &RunRun);

}  // namespace
}  // namespace dsv4::cli
