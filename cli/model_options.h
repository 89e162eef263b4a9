// Options shared by the commands that run the model (run, logits): model
// loading, KV placement and sessions.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cxxopts.hpp>

#include "engine/model/model.h"
#include "engine/model/paged_experts.h"
#include "engine/runtime/generation.h"
#include "engine/runtime/memory_plan.h"
#include "engine/runtime/scheduler.h"
#include "engine/runtime/sequence_runner.h"
#include "engine/text/tokenizer.h"
#include "loader/checkpoint.h"

namespace dsv4::cli {

void AddModelOptions(cxxopts::Options& options);

// What a command runs beside the weights, for the memory plan: sequences at
// once, the prefix cache (the scheduler options, where it has them), and
// whether speculative decoding may run the MTP block (then it is resident).
struct Workload {
  int64_t parallel = 1;
  int64_t prefix_cache_bytes = 0;
  bool speculative = false;
  int64_t longest_prompt = 0;  // an upper bound on a prompt's tokens, where the command knows it (0: unknown)
};

// The memory plan (engine/runtime/memory_plan.h) of the checkpoint for the
// model options (--mem-budget, --kv-ram-budget, --kv-dir, --ctx-size,
// --chunk) and `workload`, on this machine.
MemoryPlan PlanFromArgs(const cxxopts::ParseResult& args, const Checkpoint& checkpoint, const Workload& workload);

// The model named by -m, with --threads applied; logs to stderr, the memory
// plan in one line. Its weights live in a WeightStore under the plan's
// budget: all resident, or routed experts paged.
struct LoadedModel {
  StoredModel stored;
  int64_t chunk = 0;
  KvOptions kv;
  MemoryPlan plan;
  const Checkpoint& checkpoint() const { return *stored.checkpoint; }
  const Model& model() const { return *stored.model; }
};
LoadedModel LoadModel(const cxxopts::ParseResult& args, const Workload& workload = {});

// --matmul: which kernels every MatMul of this process runs (LoadModel sets
// it; `plan` too, for the decode step it times).
void SetMatMulKernelsFromArgs(const cxxopts::ParseResult& args);

// The scheduler options the plan sets: rows per step, KV placement, the
// context and the pools admission counts against (one sequence, no prefix
// cache; SchedulerOptionsFromArgs adds those).
SchedulerOptions PlannedSchedulerOptions(const LoadedModel& loaded);

// A sequence ready to take `prompt`: restored from --load-session, or from
// the longest matching prefix in --session-dir (then the prompt is cut to
// what is left to feed).
class SessionSequence {
 public:
  SessionSequence(const cxxopts::ParseResult& args, const LoadedModel& loaded, std::vector<int32_t>& prompt);
  SequenceRunner& runner() { return runner_; }
  // Saves to --save-session and to --session-dir, if given.
  void Finish();

 private:
  std::string save_path_, session_dir_;
  uint64_t identity_ = 0;
  SequenceRunner runner_;
};

// Throws when --save-session, --load-session or --session-dir is given to a
// command that keeps no single sequence; `why` says what it does instead.
void RefuseSessionOptions(const cxxopts::ParseResult& args, const std::string& command, const std::string& why);

// The config.json of the model of -m, read alone: commands check the
// tokenizer and the options that depend on the model before LoadModel, so
// that a mistake is reported before the weights load, which can take minutes.
ModelConfig ConfigFromArgs(const cxxopts::ParseResult& args);

// The tokenizer.json beside the model of -m, checked against its vocabulary.
Tokenizer LoadTokenizer(const cxxopts::ParseResult& args, const ModelConfig& config);

// Sessions for a generation request: --load-session continues a saved
// sequence (its tokens come before request.prompt), --session-dir starts
// from the longest saved prefix of the prompt; Save writes the final state
// to --save-session and --session-dir.
class SessionStart {
 public:
  SessionStart(const cxxopts::ParseResult& args, const LoadedModel& loaded, GenerationRequest& request);
  void Save(const GenerationUpdate& last) const;

 private:
  std::string save_path_, session_dir_;
  uint64_t identity_ = 0;
};

}  // namespace dsv4::cli
