#include "cli/sampling_options.h"

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cli/arguments.h"
#include "loader/error.h"

namespace dsv4::cli {

void AddSamplingOptions(cxxopts::Options& options, int64_t default_max_tokens) {
  options.add_options("Sampling")
      ("temperature", "Sampling temperature; 0 = greedy", cxxopts::value<double>()->default_value("1.0"))
      ("top-p", "Nucleus sampling: keep the most likely tokens up to this mass, in (0, 1]",
       cxxopts::value<double>()->default_value("1.0"))
      ("top-k", "Keep the K most likely tokens (0 = all)", cxxopts::value<int64_t>()->default_value("0"))
      ("min-p", "Drop tokens below this fraction of the most likely one's probability, in [0, 1]",
       cxxopts::value<double>()->default_value("0"))
      ("seed", "Random seed (default: a random one, reported on stderr)", cxxopts::value<uint64_t>())
      ("presence-penalty", "Subtract X from tokens already generated, in [-2, 2]",
       cxxopts::value<double>()->default_value("0"))
      ("frequency-penalty", "Subtract X per earlier occurrence of a generated token, in [-2, 2]",
       cxxopts::value<double>()->default_value("0"))
      ("stop", "Stop when the answer contains STR (repeatable; STR is not printed)",
       cxxopts::value<std::vector<std::string>>())
      ("n,max-tokens", "Tokens to generate at most (reasoning included)",
       cxxopts::value<int64_t>()->default_value(std::to_string(default_max_tokens)))
      ("reasoning-budget", "Thinking modes: after N reasoning tokens, end the reasoning (emit </think>)",
       cxxopts::value<int64_t>());
}

SamplingParams SamplingFromArgs(const cxxopts::ParseResult& args, int64_t vocab) {
  SamplingParams p;
  p.temperature = args["temperature"].as<double>();
  p.top_p = args["top-p"].as<double>();
  p.top_k = args["top-k"].as<int64_t>();
  p.min_p = args["min-p"].as<double>();
  p.presence_penalty = args["presence-penalty"].as<double>();
  p.frequency_penalty = args["frequency-penalty"].as<double>();
  if (args.count("stop")) p.stop = args["stop"].as<std::vector<std::string>>();
  p.max_tokens = args["max-tokens"].as<int64_t>();
  if (p.max_tokens < 0) throw Error("-n/--max-tokens must be >= 0");
  if (args.count("seed")) {
    p.seed = args["seed"].as<uint64_t>();
  } else {
    std::random_device device;
    p.seed = (uint64_t{device()} << 32) | device();
  }
  try {
    ValidateSampling(p, vocab);
  } catch (const Error& e) {
    // The messages name request fields (top_p); the options spell them --top-p.
    std::string message = e.what();
    for (size_t i = 0; i < message.size() && message[i] != ' '; ++i) {
      if (message[i] == '_') message[i] = '-';
    }
    throw Error("--" + message);
  }
  return p;
}

int64_t ReasoningBudgetFromArgs(const cxxopts::ParseResult& args) {
  if (!args.count("reasoning-budget")) return -1;
  const int64_t budget = args["reasoning-budget"].as<int64_t>();
  if (budget < 0) throw Error("--reasoning-budget must be >= 0");
  return budget;
}

void AddSpeculativeOption(cxxopts::Options& options) {
  options.add_options("Scheduling")
      ("speculative", "auto | mtp | off: the checkpoint's MTP block drafts the next tokens and the next step "
       "verifies them beside the current one, for each sequence while its drafts pay (auto: when the checkpoint "
       "has an MTP block); the output is the same either way (docs/speculative.md)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("draft-tokens", "With --speculative auto or mtp: drafts verified per step at most (1 to 3; the MTP block is chained "
       "for more than one, each depth drafted only while it pays)",
       cxxopts::value<int64_t>()->default_value("1"));
}

Speculation SpeculativeFromArgs(const cxxopts::ParseResult& args) {
  const std::string mode = args["speculative"].as<std::string>();
  Speculation speculation;
  if (mode == "mtp") {
    speculation.mode = Speculation::Mode::kMtp;
  } else if (mode == "off") {
    speculation.mode = Speculation::Mode::kOff;
  } else if (mode != "auto") {
    throw Error("--speculative must be auto, mtp or off, not '" + mode + "'");
  }
  speculation.draft_tokens = args["draft-tokens"].as<int64_t>();
  if (speculation.draft_tokens < 1 || speculation.draft_tokens > DraftRecord::kDepths) {
    throw Error("--draft-tokens must be 1 to " + std::to_string(DraftRecord::kDepths) + ", not " +
                std::to_string(speculation.draft_tokens));
  }
  return speculation;
}

void AddSchedulerOptions(cxxopts::Options& options, int64_t default_parallel, const std::string& default_prefix_cache) {
  AddSpeculativeOption(options);
  options.add_options("Scheduling")
      ("parallel", "Sequences generating at once", cxxopts::value<int64_t>()->default_value(
                                                        std::to_string(default_parallel)))
      ("prefix-cache", "RAM for cached prompt-prefix states (0 = no prefix reuse), e.g. 2G",
       cxxopts::value<std::string>()->default_value(default_prefix_cache));
}

SchedulerOptions SchedulerOptionsFromArgs(const cxxopts::ParseResult& args, const LoadedModel& loaded) {
  const Workload workload = WorkloadFromArgs(args);
  SchedulerOptions options = PlannedSchedulerOptions(loaded);
  options.max_sequences = workload.parallel;
  options.prefix_cache_bytes = workload.prefix_cache_bytes;
  const Speculation speculation = SpeculativeFromArgs(args);
  options.speculative = speculation.UsesMtp(loaded.model().config());
  options.draft_tokens = speculation.draft_tokens;
  return options;
}

Workload WorkloadFromArgs(const cxxopts::ParseResult& args) {
  Workload workload;
  workload.parallel = args["parallel"].as<int64_t>();
  if (workload.parallel < 1) throw Error("--parallel must be >= 1");
  workload.prefix_cache_bytes = ParseBytes(args["prefix-cache"].as<std::string>(), "--prefix-cache");
  // Checked here, before the model loads.
  workload.speculative = SpeculativeFromArgs(args).mode != Speculation::Mode::kOff;
  return workload;
}

}  // namespace dsv4::cli
