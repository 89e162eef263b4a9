#include "engine/runtime/memory_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "loader/error.h"
#include "loader/expert_cache.h"

namespace dsv4 {
namespace {

// Code, the tokenizer, thread stacks, allocator slack: what is not counted
// elsewhere.
constexpr int64_t kFixedMargin = int64_t{160} << 20;

std::string Available(const MemoryLimits& limits) {
  return FormatBytes(limits.available) + " available (" + limits.available_source + ")";
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  char text[32];
  if (bytes >= (int64_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / (1 << 30));
  } else {
    std::snprintf(text, sizeof text, "%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  }
  return text;
}

int64_t ForwardScratchBytes(const ModelConfig& c, int64_t rows) {
  // Per row: the hyper-connection streams and their mixes, the attention
  // queries and outputs, the routed and shared experts' intermediates. On a
  // Flash-width model (synth --like flash) a 512-row call measured 0.5 MB a
  // row above a 64-row one; this counts 0.57.
  const int64_t floats = 4 * c.hc_mult * c.hidden_size + 3 * c.num_attention_heads * c.head_dim / 2 +
                         2 * (c.num_experts_per_tok + c.n_shared_experts) * c.moe_intermediate_size;
  return rows * floats * static_cast<int64_t>(sizeof(float));
}

DecodeStepRead DecodeStepBytes(const MemoryPlan& plan, const ModelConfig& config, const DecodeRead& read,
                               int64_t sequences) {
  const double n = static_cast<double>(std::max<int64_t>(1, sequences));
  const double k = static_cast<double>(config.num_experts_per_tok), e = static_cast<double>(config.n_routed_experts);
  const double distinct = e > 0 && k > 0 ? e * (1 - std::pow(1 - k / e, n)) / k : 0;  // in units of one token's experts
  const double experts = static_cast<double>(read.routed_experts) * distinct;
  const double hit = plan.paging && plan.weights.experts > 0
                         ? static_cast<double>(plan.expert_slots) / static_cast<double>(plan.weights.experts)
                         : 1.0;
  DecodeStepRead step;
  step.dense_bytes = static_cast<double>(read.dense) + n * static_cast<double>(read.embedding_row) +
                     n * static_cast<double>(plan.kv.fixed_bytes);
  step.head_bytes = static_cast<double>(read.head);
  step.expert_bytes = experts * hit;
  step.disk_bytes = experts * (1 - hit);
  return step;
}

double PredictDecodeTokS(const DecodeStepRead& step, int64_t sequences, const DecodeReadRates& rates) {
  if (rates.ram_gbps <= 0) return 0;
  // A kernel reads no faster than the RAM feeds it.
  const auto rate = [&](double kernel_gbps) {
    return (kernel_gbps > 0 ? std::min(kernel_gbps, rates.ram_gbps) : rates.ram_gbps) * 1e9;
  };
  double seconds = step.dense_bytes / rate(rates.fp8_gbps) + step.head_bytes / rate(rates.bf16_gbps) +
                   step.expert_bytes / rate(rates.fp4_gbps);
  if (step.disk_bytes > 0 && rates.disk_gbps > 0) seconds += step.disk_bytes / (rates.disk_gbps * 1e9);
  seconds += rates.step_overhead_seconds;
  return seconds > 0 ? static_cast<double>(sequences) / seconds : 0;
}

ExpertCacheFill PredictExpertCacheFill(const MemoryPlan& plan, const DecodeStepRead& step, double disk_gbps,
                                       double touch_gbps) {
  ExpertCacheFill fill;
  fill.start_slots = plan.expert_slots;
  const int64_t slot = plan.weights.slot_bytes;
  if (!plan.paging || slot <= 0 || disk_gbps <= 0 || touch_gbps <= 0 || touch_gbps >= disk_gbps) return fill;
  fill.start_slots = std::min(plan.expert_slots, (kFillCostSampleBytes + slot - 1) / slot);
  const double experts = static_cast<double>(plan.weights.experts);
  const double empty_at_start = experts - static_cast<double>(fill.start_slots);
  const double empty_when_full = experts - static_cast<double>(plan.expert_slots);
  const double rate = kGrowthShareOfReReads * (step.expert_bytes + step.disk_bytes) * touch_gbps /
                      (disk_gbps * static_cast<double>(slot) * experts);
  if (rate > 0 && empty_when_full > 0) fill.tokens_to_fill = std::log(empty_at_start / empty_when_full) / rate;
  return fill;
}

int64_t MemoryPlan::ContextFitting(int64_t bytes) const {
  // TotalBytes grows with the tokens (in steps: whole pages, doubling vectors).
  int64_t fits = 0, beyond = context_tokens + 1;
  while (beyond - fits > 1) {
    const int64_t mid = fits + (beyond - fits) / 2;
    (kv.TotalBytes(mid) <= bytes ? fits : beyond) = mid;
  }
  return fits;
}

int64_t MemoryPlan::ProbeBytes(int64_t wanted) const {
  constexpr int64_t kLeast = int64_t{64} << 20;
  if (limits.available < 0) return wanted;
  return std::max(kLeast, std::min(wanted, limits.available - working_bytes - kv_reserve_bytes));
}

std::string MemoryPlan::Summary() const {
  std::string line = "memory plan: ";
  if (paging) {
    line += "routed experts paged through a cache of " + std::to_string(expert_slots) + " of " +
            std::to_string(weights.experts) + " experts";
  } else {
    line += "every weight resident";
  }
  line += " (" + FormatBytes(resident_weight_bytes) + " of " + FormatBytes(weights.all_bytes) + "): " + reason;
  if (kv_ram_pool >= 0) line += "; KV pool " + FormatBytes(kv_ram_pool);
  if (kv_ram_per_sequence >= 0) line += ", " + FormatBytes(kv_ram_per_sequence) + " per sequence before --kv-dir";
  return line;
}

MemoryPlan PlanMemory(const MemoryLimits& limits, const WeightSizes& weights, const ModelConfig& config,
                      const KvSize& kv, const MemoryPlanRequest& request) {
  MemoryPlan plan;
  plan.limits = limits;
  plan.weights = weights;
  plan.kv = kv;
  plan.parallel = std::max<int64_t>(1, request.parallel);
  plan.context_tokens = request.context_tokens > 0
                            ? std::min(request.context_tokens, config.max_position_embeddings)
                            : config.max_position_embeddings;
  const int64_t reserve_tokens = std::min(plan.context_tokens, kKvReserveTokens);
  plan.kv_reserve_bytes = plan.parallel * kv.TotalBytes(reserve_tokens);
  // A forward call holds at most a chunk of rows, and no more than the
  // prompts it prefills; a decode step has a row per sequence, or a few with
  // speculative drafts (16 covers them).
  int64_t rows = request.chunk > 0 ? request.chunk : plan.context_tokens;
  if (request.longest_prompt > 0) rows = std::min(rows, plan.parallel * std::max<int64_t>(request.longest_prompt, 16));
  plan.working_bytes = ForwardScratchBytes(config, std::min(rows, plan.context_tokens)) +
                       plan.parallel * config.vocab_size * static_cast<int64_t>(sizeof(float)) +
                       std::max<int64_t>(0, request.prefix_cache_bytes) + kFixedMargin;
  const bool known = limits.available >= 0;
  const int64_t room = known ? limits.available - plan.kv_reserve_bytes - plan.working_bytes : -1;

  plan.automatic = request.mem_budget < 0;
  if (!plan.automatic) {
    if (request.mem_budget < weights.dense_bytes) {
      throw Error("--mem-budget " + FormatBytes(request.mem_budget) + " is less than the dense weights of " +
                  request.model + " (" + FormatBytes(weights.dense_bytes) + "); give at least " +
                  FormatBytes(weights.MinimumBudget()));
    }
    plan.weight_budget = request.mem_budget;
    plan.reason = "--mem-budget " + FormatBytes(request.mem_budget);
  } else if (!known || weights.all_bytes <= room) {
    plan.weight_budget = weights.all_bytes;
    plan.reason = known ? "they fit in " + Available(limits) + " beside a KV reserve of " +
                              FormatBytes(plan.kv_reserve_bytes) + " (" + std::to_string(plan.parallel) + " x " +
                              std::to_string(reserve_tokens) + " tokens) and " + FormatBytes(plan.working_bytes) +
                              " of working memory"
                        : "the available memory is unknown";
  } else if (room >= weights.MinimumBudget()) {
    plan.weight_budget = room;
    plan.reason = "the weights do not fit in " + Available(limits) + " beside a KV reserve of " +
                  FormatBytes(plan.kv_reserve_bytes) + " (" + std::to_string(plan.parallel) + " x " +
                  std::to_string(reserve_tokens) + " tokens) and " + FormatBytes(plan.working_bytes) +
                  " of working memory";
  } else {
    throw Error(request.model + ": " + Available(limits) + " is too little: the dense weights (" +
                FormatBytes(weights.dense_bytes) + "), two expert slots (" + FormatBytes(2 * weights.slot_bytes) +
                "), a KV reserve of " + FormatBytes(plan.kv_reserve_bytes) + " (" + std::to_string(plan.parallel) +
                " x " + std::to_string(reserve_tokens) + " tokens) and " + FormatBytes(plan.working_bytes) +
                " of working memory need " +
                FormatBytes(weights.MinimumBudget() + plan.kv_reserve_bytes + plan.working_bytes) +
                "; lower --parallel, --ctx-size or --prefix-cache, or give a --mem-budget of at least " +
                FormatBytes(weights.MinimumBudget()));
  }
  plan.paging = plan.weight_budget < weights.all_bytes;
  if (plan.paging) {
    plan.expert_slots = weights.slot_bytes > 0
                            ? std::min((plan.weight_budget - weights.dense_bytes) / weights.slot_bytes, weights.experts)
                            : 0;
    plan.resident_weight_bytes = weights.dense_bytes + plan.expert_slots * weights.slot_bytes;
  } else {
    plan.resident_weight_bytes = weights.all_bytes;
  }
  // Whatever the weights and working memory leave is the sequences' KV.
  if (known) {
    plan.kv_ram_pool = limits.available - plan.resident_weight_bytes - plan.working_bytes;
    if (plan.kv_ram_pool < plan.kv_reserve_bytes) {
      // Only an explicit budget gets here: it is honoured, with the reserve
      // as the KV pool, and the line says what it overcommits.
      plan.reason += " (it leaves " + FormatBytes(std::max<int64_t>(0, plan.kv_ram_pool)) +
                     " for KV beside working memory, less than the reserve)";
      plan.kv_ram_pool = plan.kv_reserve_bytes;
    }
  }
  if (request.kv_spill) {
    if (request.kv_ram_budget >= 0) {
      plan.kv_ram_per_sequence = request.kv_ram_budget;
    } else if (plan.kv_ram_pool >= 0) {
      // Each sequence's share, less the part that never spills.
      plan.kv_ram_per_sequence =
          std::max<int64_t>(0, plan.kv_ram_pool / plan.parallel - kv.RamBytes(plan.context_tokens));
    } else {
      plan.kv_ram_per_sequence = 0;  // only partial pages stay in RAM
    }
  }
  return plan;
}

}  // namespace dsv4
