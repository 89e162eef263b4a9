// The memory plan (--mem-budget auto, --kv-ram-budget auto): how the memory
// this process may use (loader/memory_limits.h) is shared between weights,
// the KV cache of the sequences and working memory, so that no flag is
// needed on any machine and no request ends in the OOM killer.
//
// In this order: the dense weights; a KV reserve of `parallel` sequences of
// min(context, 64k) tokens; working memory (one forward call's activations,
// the prefix cache, a fixed margin); then the routed experts, resident if
// they fit in what is left, else paged through a cache of what is left. An
// explicit --mem-budget replaces that choice. Whatever the weights leave is
// the KV pool the scheduler admits requests against (scheduler.h).
#pragma once

#include <cstdint>
#include <string>

#include "engine/model/sequence_state.h"
#include "loader/config.h"
#include "loader/memory_limits.h"
#include "loader/model_summary.h"
#include "loader/weight_store.h"

namespace dsv4 {

struct MemoryPlanRequest {
  std::string model;            // the checkpoint, for messages
  int64_t mem_budget = -1;      // --mem-budget; < 0: auto
  int64_t kv_ram_budget = -1;   // --kv-ram-budget (per sequence, with kv_spill); < 0: auto
  bool kv_spill = false;        // --kv-dir given
  int64_t parallel = 1;         // sequences at once
  int64_t context_tokens = 0;   // --ctx-size; 0: the model's context
  int64_t chunk = 512;          // rows per forward call (0: a whole prompt)
  int64_t longest_prompt = 0;   // tokens of the longest prompt, where known (0: unknown); bounds the rows too
  int64_t prefix_cache_bytes = 0;
};

// Tokens per sequence the KV reserve covers, whatever the context.
inline constexpr int64_t kKvReserveTokens = 65536;

struct MemoryPlan {
  MemoryLimits limits;
  WeightSizes weights;
  KvSize kv;
  int64_t parallel = 1;
  int64_t context_tokens = 0;
  bool automatic = true;         // the weights' budget was chosen here
  int64_t weight_budget = 0;     // what the WeightStore gets
  bool paging = false;
  int64_t expert_slots = 0;      // cache slots when paging
  int64_t resident_weight_bytes = 0;
  int64_t kv_reserve_bytes = 0;  // parallel x KV of min(context, 64k) tokens
  int64_t working_bytes = 0;     // activations, prefix cache and margin
  // RAM for every sequence's KV: what admission counts against; < 0 when
  // the memory this process may use is unknown.
  int64_t kv_ram_pool = -1;
  // With --kv-dir: compressed-row bytes each sequence keeps in RAM before
  // spilling. -1 without --kv-dir.
  int64_t kv_ram_per_sequence = -1;
  std::string reason;            // why the weights are placed as they are

  // The longest context one sequence's KV fits in `bytes` (RAM part and
  // compressed rows together).
  int64_t ContextFitting(int64_t bytes) const;
  // What a bandwidth probe run while no weight is loaded may allocate
  // within the plan: `wanted`, or what the weights will take if that is
  // less (64 MiB at least).
  int64_t ProbeBytes(int64_t wanted) const;
  // One line for stderr: what was chosen and why.
  std::string Summary() const;
};

// Throws dsv4::Error when the plan cannot hold the model: an explicit
// budget below the dense weights, or too little memory for the dense
// weights, two expert slots, the KV reserve and working memory (naming the
// minimum and what to change).
MemoryPlan PlanMemory(const MemoryLimits& limits, const WeightSizes& weights, const ModelConfig& config,
                      const KvSize& kv, const MemoryPlanRequest& request);

// What one decode step of `sequences` sequences reads, early in their
// context, under the plan: from RAM the dense weights (with one embedding
// row per sequence and the window rings), the head, and the distinct routed
// experts the sequences pick (uniform routing: E (1 - (1 - k/E)^n) a layer)
// that the cache holds (slots / experts when paging); from disk the rest.
struct DecodeStepRead {
  double dense_bytes = 0;
  double head_bytes = 0;
  double expert_bytes = 0;
  double disk_bytes = 0;
  double ram_bytes() const { return dense_bytes + head_bytes + expert_bytes; }
};
DecodeStepRead DecodeStepBytes(const MemoryPlan& plan, const ModelConfig& config, const DecodeRead& read,
                               int64_t sequences);

// GB/s at which each part is read: the decode kernels' measured rates
// (simd/roofline.h; 0: not measured, the RAM's rate instead), each at most
// the RAM's, and the disk's.
struct DecodeReadRates {
  double ram_gbps = 0;
  double fp4_gbps = 0, fp8_gbps = 0, bf16_gbps = 0;
  double disk_gbps = 0;
  // What a step takes beyond its reads (decode_overhead.h): attention,
  // norms, routing, the threads' synchronization. Measured with one
  // sequence and added once a step.
  double step_overhead_seconds = 0;
};
// Tokens per second of that step when each part is read at its rate:
// experts as FP4, dense weights as FP8, the head as BF16; plus the step's
// overhead.
double PredictDecodeTokS(const DecodeStepRead& step, int64_t sequences, const DecodeReadRates& rates);

// How a paged run's expert cache fills (ExpertCache, FreshSlotPaysOff).
// Where fresh memory is touched no slower than the disk reads, every slot
// fills as soon as a miss wants one. Where it is slower (a VM whose host
// provides memory lazily), a run starts with the slots the cache's fill-cost
// sample takes (kFillCostSampleBytes) and each decoded token then spends on
// fresh slots a share (kGrowthShareOfReReads) of the time it re-read misses:
// with uniform routing, the slots still empty fall by the same factor every
// token, e^-(share x expert bytes x touch / (disk x slot bytes x experts)).
struct ExpertCacheFill {
  int64_t start_slots = 0;    // the slots a run's first tokens have
  double tokens_to_fill = 0;  // decoded tokens until the plan's slots are full (0: from the start)
};
// `step`: one sequence's decode step under the full plan.
ExpertCacheFill PredictExpertCacheFill(const MemoryPlan& plan, const DecodeStepRead& step, double disk_gbps,
                                       double touch_gbps);

// Activation bytes of one forward call of `rows` rows (the plan's estimate).
int64_t ForwardScratchBytes(const ModelConfig& config, int64_t rows);

// "1.25 GiB", "300 MiB".
std::string FormatBytes(int64_t bytes);

}  // namespace dsv4
