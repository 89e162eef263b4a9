// dsv4 synth: writes a random-weight checkpoint in the official format.
#include <charconv>
#include <cstdio>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "engine/runtime/progress_line.h"
#include "loader/error.h"
#include "loader/synth.h"

namespace dsv4::cli {
namespace {

// Integers are taken as text and parsed here so that a bad value is reported
// with its option's name (cxxopts says only "Argument 'x' failed to parse").
std::optional<int64_t> OptionalInt(const cxxopts::ParseResult& args, const char* name) {
  if (!args.count(name)) return std::nullopt;
  const std::string text = args[name].as<std::string>();
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error(std::string("--") + name + ": \"" + text + "\" is not an integer");
  }
  return value;
}

// Progress on stderr (ProgressLine: in place on a terminal, whole lines in a
// log).
class ProgressPrinter {
 public:
  void operator()(const SynthProgress& p) {
    const double mb = p.bytes_done / 1e6;
    line_.Update(p.bytes_done == p.bytes_total, "synth: shard %d/%d, %.1f of %.1f MB (%.0f%%), %.1f MB/s", p.shard,
                 p.num_shards, mb, p.bytes_total / 1e6, 100.0 * p.bytes_done / p.bytes_total,
                 p.seconds > 0 ? mb / p.seconds : 0.0);
  }

 private:
  ProgressLine line_;
};

int RunSynth(int argc, char** argv) {
  cxxopts::Options options("dsv4 synth", "Write a random-weight DeepSeek-V4 checkpoint in the official format.");
  options.add_options()
      ("like", "Start from a preset: tiny (the tiny-dsv4 fixture), flash (DeepSeek-V4-Flash) or long (small widths, every layer kind, a 1M-token context)", cxxopts::value<std::string>())
      ("config", "Start from this config.json", cxxopts::value<std::string>())
      ("layers", "Main layers; the schedule is the first N entries of the Flash pattern 0,0,4,128,4,...", cxxopts::value<std::string>())
      ("experts", "Routed experts (top-k is capped at it)", cxxopts::value<std::string>())
      ("vocab", "Vocabulary size", cxxopts::value<std::string>())
      ("max-positions", "max_position_embeddings", cxxopts::value<std::string>())
      ("tokenizer", "Copy this tokenizer.json (and a tokenizer_config.json beside it) into the output", cxxopts::value<std::string>())
      ("seed", "Random seed (default: 0)", cxxopts::value<std::string>())
      ("out", "Output directory (must not exist or be empty)", cxxopts::value<std::string>());
  const auto args = ParseOptions(options, argc, argv);
  if (args.count("like") == args.count("config")) throw Error("give exactly one of --like tiny|flash|long and --config FILE");
  if (!args.count("out")) throw Error("--out DIR is required");
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");

  ModelConfig base;
  if (args.count("like")) {
    const std::string like = args["like"].as<std::string>();
    if (like == "tiny") {
      base = TinyConfig();
    } else if (like == "flash") {
      base = FlashConfig();
    } else if (like == "long") {
      base = LongContextConfig();
    } else {
      throw Error("--like: \"" + like + "\" is not a preset (tiny, flash or long)");
    }
  } else {
    base = ModelConfig::FromFile(args["config"].as<std::string>());
  }
  SynthOverrides overrides;
  overrides.layers = OptionalInt(args, "layers");
  overrides.experts = OptionalInt(args, "experts");
  overrides.vocab = OptionalInt(args, "vocab");
  overrides.max_positions = OptionalInt(args, "max-positions");
  const ModelConfig config = ApplyOverrides(base, overrides);

  SynthOptions synth;
  // cxxopts counts an option only when it is given, default or not.
  const int64_t seed = OptionalInt(args, "seed").value_or(0);
  if (seed < 0) throw Error("--seed must be >= 0");
  synth.seed = static_cast<uint64_t>(seed);
  if (args.count("tokenizer")) synth.tokenizer = args["tokenizer"].as<std::string>();
  synth.progress = ProgressPrinter();
  const std::string out = args["out"].as<std::string>();
  SynthesizeCheckpoint(config, synth, out);
  std::fprintf(stderr, "synth: wrote %s\n", out.c_str());
  return 0;
}

RegisterCommand kRegister("synth", "write a random-weight checkpoint in the official format", &RunSynth);

}  // namespace
}  // namespace dsv4::cli
