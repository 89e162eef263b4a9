// The SAMPLING options (design.md) shared by run and chat (and, as request
// defaults, batch and serve), and the scheduler options of the commands that
// generate.
#pragma once

#include <cstdint>
#include <string>

#include <cxxopts.hpp>

#include "cli/model_options.h"
#include "engine/runtime/sampling.h"
#include "engine/runtime/scheduler.h"

namespace dsv4::cli {

// --temperature --top-p --top-k --min-p --seed --presence-penalty
// --frequency-penalty --stop (repeatable) -n/--max-tokens --reasoning-budget.
void AddSamplingOptions(cxxopts::Options& options, int64_t default_max_tokens);

// The options as validated SamplingParams; without --seed, a random seed
// (the command reports it, so a run can be repeated).
SamplingParams SamplingFromArgs(const cxxopts::ParseResult& args, int64_t vocab);
// --reasoning-budget, or -1 when not given.
int64_t ReasoningBudgetFromArgs(const cxxopts::ParseResult& args);

// --speculative auto|mtp|off and --draft-tokens K (AddSchedulerOptions
// includes them).
void AddSpeculativeOption(cxxopts::Options& options);
struct Speculation {
  enum class Mode { kAuto, kMtp, kOff } mode = Mode::kAuto;
  int64_t draft_tokens = 1;
  // auto: with the checkpoint's MTP block when it has one.
  bool UsesMtp(const ModelConfig& config) const {
    return mode == Mode::kMtp || (mode == Mode::kAuto && config.num_nextn_predict_layers > 0);
  }
};
Speculation SpeculativeFromArgs(const cxxopts::ParseResult& args);
// --parallel, --prefix-cache and --speculative.
void AddSchedulerOptions(cxxopts::Options& options, int64_t default_parallel,
                         const std::string& default_prefix_cache = "2G");
SchedulerOptions SchedulerOptionsFromArgs(const cxxopts::ParseResult& args, const LoadedModel& loaded);
// --parallel, --prefix-cache and --speculative, for the memory plan (LoadModel).
Workload WorkloadFromArgs(const cxxopts::ParseResult& args);

}  // namespace dsv4::cli
