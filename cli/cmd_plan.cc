// dsv4 plan: before the first run, what this machine will do with a
// checkpoint: what is resident and what is paged, what a decoded token
// reads, how much context fits, the measured bandwidth of RAM and of the
// disk holding the shards, and the decode speed the roofline predicts.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "cli/sampling_options.h"
#include "cli/thread_options.h"
#include "engine/kv/kv_spill.h"
#include "engine/runtime/decode_overhead.h"
#include "loader/error.h"
#include "loader/expert_cache.h"
#include "loader/model_summary.h"
#include "simd/roofline.h"

namespace dsv4::cli {
namespace {

using Json = nlohmann::ordered_json;

// Disk probe: reads of the largest shard with O_DIRECT, the median of a few.
constexpr int kDiskProbes = 3;
constexpr int64_t kDiskProbeBytes = int64_t{256} << 20;
// RAM probe: at most this much, so that plan stays quick where the
// last-level cache (which the probe must exceed) is reported in hundreds of MB.
constexpr int64_t kRamProbeBytes = int64_t{2} << 30;
// Weights each decode-kernel probe cycles through.
constexpr int64_t kKernelProbeBytes = int64_t{512} << 20;
// The zero-weight model timed for what a decode step costs beyond its reads.
constexpr int64_t kOverheadProbeBytes = int64_t{1} << 30;
// Fresh memory touched once, in parts, for at most about 1.5 s (a second
// or two where the host provides it lazily, a tenth elsewhere).
constexpr int64_t kTouchProbeBytes = int64_t{2} << 30;
constexpr int64_t kTouchProbePiece = int64_t{256} << 20;
constexpr double kTouchProbeSeconds = 1.5;

double MedianDiskGbps(const Checkpoint& checkpoint, int64_t chunk) {
  const SafetensorsFile* largest = nullptr;
  for (const auto& shard : checkpoint.shards()) {
    if (!largest || shard->size() > largest->size()) largest = shard.get();
  }
  std::vector<double> runs;
  for (int i = 0; i < kDiskProbes; ++i) {
    runs.push_back(MeasureFileReadBandwidth(largest->path(), kDiskProbeBytes, chunk, /*direct_io=*/true));
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

struct Figures {
  MemoryPlan plan;
  int64_t parallel = 1;
  DecodeReadRates rates;
  double touch_gbps = 0;  // fresh memory's first touch
  DecodeOverhead overhead;
  DecodeStepRead one, many;
  ExpertCacheFill fill;
  // With the cache a run starts with, and with the plan's cache full: the
  // same unless fresh memory is slower to touch than the disk to read.
  double tok_s_one = 0, tok_s_many = 0;
  double tok_s_one_full = 0, tok_s_many_full = 0;
  int64_t max_context_ram = 0;
  int64_t max_context_disk = -1;  // with --kv-dir
  int64_t kv_dir_free = -1;
};

Json ToJson(const Figures& f) {
  const MemoryPlan& p = f.plan;
  const auto optional = [](int64_t v) { return v >= 0 ? Json(v) : Json(nullptr); };
  Json out;
  out["available_bytes"] = optional(p.limits.available);
  out["available_source"] = p.limits.available_source;
  out["cgroup_limit_bytes"] = optional(p.limits.cgroup_limit);
  out["mem_budget_bytes"] = p.weight_budget;
  out["mem_budget_auto"] = p.automatic;
  out["resident_bytes"] = p.resident_weight_bytes;
  out["paged_bytes"] = p.weights.all_bytes - p.resident_weight_bytes;
  out["dense_bytes"] = p.weights.dense_bytes;
  out["paging"] = p.paging;
  out["expert_cache_slots"] = p.expert_slots;
  out["experts"] = p.weights.experts;
  out["kv_reserve_bytes"] = p.kv_reserve_bytes;
  out["working_bytes"] = p.working_bytes;
  out["kv_ram_pool_bytes"] = optional(p.kv_ram_pool);
  out["decode_bytes_per_token"] = f.one.ram_bytes() + f.one.disk_bytes;
  out["decode_disk_bytes_per_token"] = f.one.disk_bytes;
  out["kv_bytes_per_token"] = p.kv.ram_bytes_per_token + p.kv.spillable_bytes_per_token;
  out["kv_fixed_bytes"] = p.kv.fixed_bytes;
  out["context_tokens"] = p.context_tokens;
  out["max_context_ram"] = f.max_context_ram;
  out["max_context_disk"] = optional(f.max_context_disk);
  out["kv_dir_free_bytes"] = optional(f.kv_dir_free);
  out["ram_read_gbps"] = f.rates.ram_gbps;
  out["disk_read_gbps"] = f.rates.disk_gbps;
  out["kernel_read_gbps"] = {{"fp4", f.rates.fp4_gbps}, {"fp8", f.rates.fp8_gbps}, {"bf16", f.rates.bf16_gbps}};
  out["fresh_memory_gbps"] = f.touch_gbps;
  out["decode_overhead_seconds_per_layer"] = f.overhead.seconds_per_layer;
  out["decode_step_overhead_seconds"] = f.rates.step_overhead_seconds;
  out["expert_cache_start_slots"] = f.fill.start_slots;
  out["expert_cache_fill_tokens"] = f.fill.tokens_to_fill;
  out["predicted_decode_tok_s"] = f.tok_s_one;
  out["predicted_decode_tok_s_full_cache"] = f.tok_s_one_full;
  out["parallel"] = f.parallel;
  out["predicted_parallel_decode_tok_s"] = f.tok_s_many;
  out["predicted_parallel_decode_tok_s_full_cache"] = f.tok_s_many_full;
  out["reason"] = p.reason;
  return out;
}

void PrintText(const Figures& f) {
  const MemoryPlan& p = f.plan;
  const auto gb = [](double bytes) { return bytes / 1e9; };
  std::printf("memory:     %s available (%s)\n", FormatBytes(p.limits.available).c_str(),
              p.limits.available_source.c_str());
  std::printf("weights:    %s in all, %s dense; %s\n", FormatBytes(p.weights.all_bytes).c_str(),
              FormatBytes(p.weights.dense_bytes).c_str(),
              p.paging ? ("routed experts paged: a cache of " + std::to_string(p.expert_slots) + " of " +
                          std::to_string(p.weights.experts) + " experts, " + FormatBytes(p.resident_weight_bytes) +
                          " resident")
                             .c_str()
                       : "every weight resident");
  std::printf("            why: %s\n", p.reason.c_str());
  std::printf("KV cache:   %.0f bytes per token (+ %s per sequence); reserve %s, pool %s\n",
              p.kv.ram_bytes_per_token + p.kv.spillable_bytes_per_token, FormatBytes(p.kv.fixed_bytes).c_str(),
              FormatBytes(p.kv_reserve_bytes).c_str(), p.kv_ram_pool >= 0 ? FormatBytes(p.kv_ram_pool).c_str() : "?");
  std::printf("context:    %lld tokens per sequence; %lld fit in RAM", static_cast<long long>(p.context_tokens),
              static_cast<long long>(f.max_context_ram));
  if (f.max_context_disk >= 0) {
    std::printf(", %lld with --kv-dir (%s free)", static_cast<long long>(f.max_context_disk),
                FormatBytes(f.kv_dir_free).c_str());
  }
  std::printf("\ndecode:     %.3f GB per token from RAM, %.3f GB from disk\n", gb(f.one.ram_bytes()), gb(f.one.disk_bytes));
  const DecodeReadRates& r = f.rates;
  if (r.ram_gbps <= 0) return;  // --no-probe
  std::printf(
      "bandwidth:  RAM %.2f GB/s, disk %.2f GB/s (O_DIRECT), fresh memory %.2f GB/s (first touch); decode kernels "
      "FP4 %.2f, FP8 %.2f, BF16 %.2f GB/s\n",
      r.ram_gbps, r.disk_gbps, f.touch_gbps, r.fp4_gbps, r.fp8_gbps, r.bf16_gbps);
  if (f.overhead.layers > 0) {
    std::printf("overhead:   %.2f ms a decode step beyond its reads (attention, norms, routing, threads' waits): "
                "%.3f ms a layer, timed on %lld layers of zero weights\n",
                1e3 * r.step_overhead_seconds, 1e3 * f.overhead.seconds_per_layer,
                static_cast<long long>(f.overhead.layers));
  } else {
    std::printf("overhead:   not timed (%s)\n", f.overhead.not_timed.c_str());
  }
  std::printf("predicted:  %.2f tok/s decode, one sequence; %.2f tok/s in all with %lld\n", f.tok_s_one, f.tok_s_many,
              static_cast<long long>(f.parallel));
  if (f.fill.start_slots < p.expert_slots) {
    std::printf(
        "            for the %lld cache slots a run starts with (fresh memory is slower to touch than the disk "
        "reads, so the cache grows as re-reads pay for it); %.2f and %.2f tok/s once all %lld are full, after "
        "about %.0f decoded tokens\n",
        static_cast<long long>(f.fill.start_slots), f.tok_s_one_full, f.tok_s_many_full,
        static_cast<long long>(p.expert_slots), f.fill.tokens_to_fill);
  }
}

int RunPlan(int argc, char** argv) {
  cxxopts::Options options("dsv4 plan",
                           "What this machine will do with a checkpoint: the memory plan, bytes per token, the "
                           "context that fits, measured bandwidth and the predicted decode speed");
  AddModelOptions(options);
  // As `run` needs them; give --parallel and --prefix-cache as the command
  // to be run has them (batch: 16 and 2G).
  AddSchedulerOptions(options, 1, "0");
  options.add_options()("json", "One JSON object on stdout")
      ("no-probe", "Skip the bandwidth probes (no predicted speed)");
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  if (!args.count("model")) throw Error("-m/--model DIR is required");
  RefuseSessionOptions(args, "plan", "it plans, it runs nothing");
  const Workload workload = WorkloadFromArgs(args);
  StartThreadTeam(args);
  SetMatMulKernelsFromArgs(args);
  const std::string dir = args["model"].as<std::string>();
  const Checkpoint checkpoint(dir);
  const ModelConfig& config = checkpoint.config();

  Figures f;
  f.plan = PlanFromArgs(args, checkpoint, workload);
  f.parallel = workload.parallel;
  const MemoryPlan& p = f.plan;
  f.fill.start_slots = p.expert_slots;  // unless the probes below find fresh memory slow
  const ModelSummary summary = SummarizeConfig(config, dir);
  f.one = DecodeStepBytes(p, config, summary.decode, 1);
  f.many = DecodeStepBytes(p, config, summary.decode, f.parallel);
  f.max_context_ram = p.kv_ram_pool >= 0 ? p.ContextFitting(p.kv_ram_pool) : p.context_tokens;
  if (args.count("kv-dir")) {
    const std::string kv_dir = args["kv-dir"].as<std::string>();
    KvSpill::CheckDirectory(kv_dir);
    f.kv_dir_free = KvSpill::FreeBytes(kv_dir);
    // The rows that never spill bound it by RAM; the compressed rows beyond
    // each sequence's RAM share, by the disk.
    const double ram_tokens = p.kv.ram_bytes_per_token > 0 && p.kv_ram_pool >= 0
                                  ? (p.kv_ram_pool - p.kv.fixed_bytes) / p.kv.ram_bytes_per_token
                                  : static_cast<double>(p.context_tokens);
    const double disk_tokens = p.kv.spillable_bytes_per_token > 0
                                   ? (f.kv_dir_free + std::max<int64_t>(0, p.kv_ram_per_sequence)) /
                                         p.kv.spillable_bytes_per_token
                                   : static_cast<double>(p.context_tokens);
    f.max_context_disk = std::max<int64_t>(
        0, std::min<int64_t>(p.context_tokens, static_cast<int64_t>(std::min(ram_tokens, disk_tokens))));
  }
  if (!args.count("no-probe")) {
    // First, before the RAM probe's buffer, freed, makes fresh memory look fast.
    f.touch_gbps = MeasureFirstTouchBandwidth(p.ProbeBytes(kTouchProbeBytes), kTouchProbePiece, kTouchProbeSeconds);
    std::fprintf(stderr, "plan: fresh memory %.2f GB/s (first touch, the slowest %s part)\n", f.touch_gbps,
                 FormatBytes(kTouchProbePiece).c_str());
    const int64_t probe_bytes = p.ProbeBytes(std::min(ReadProbeBytes(), kRamProbeBytes));
    f.rates.ram_gbps = MeasureReadBandwidth(probe_bytes, 5);
    std::fprintf(stderr, "plan: RAM read %.2f GB/s (best of 5 passes over %s)\n", f.rates.ram_gbps,
                 FormatBytes(probe_bytes).c_str());
    const DecodeKernelRates kernels = MeasureDecodeKernelRates(p.ProbeBytes(kKernelProbeBytes));
    f.rates.fp4_gbps = kernels.fp4_gbps;
    f.rates.fp8_gbps = kernels.fp8_gbps;
    f.rates.bf16_gbps = kernels.bf16_gbps;
    f.rates.disk_gbps = MedianDiskGbps(checkpoint, std::max<int64_t>(p.weights.slot_bytes, int64_t{8} << 20));
    std::fprintf(stderr, "plan: disk read %.2f GB/s (O_DIRECT, median of %d)\n", f.rates.disk_gbps, kDiskProbes);
    f.overhead = MeasureDecodeOverhead(config, Numerics::kDefault, f.rates, p.ProbeBytes(kOverheadProbeBytes));
    f.rates.step_overhead_seconds = f.overhead.checkpoint_step_seconds;
    if (f.overhead.layers > 0) {
      std::fprintf(stderr, "plan: a decode step of %lld zero-weight layers took %.2f ms, its reads %.2f ms\n",
                   static_cast<long long>(f.overhead.layers), 1e3 * f.overhead.step_seconds,
                   1e3 * f.overhead.roofline_seconds);
    } else {
      std::fprintf(stderr, "plan: no decode step timed (%s): the prediction counts the reads only\n",
                   f.overhead.not_timed.c_str());
    }
    f.tok_s_one_full = PredictDecodeTokS(f.one, 1, f.rates);
    f.tok_s_many_full = PredictDecodeTokS(f.many, f.parallel, f.rates);
    f.fill = PredictExpertCacheFill(p, f.one, f.rates.disk_gbps, f.touch_gbps);
    MemoryPlan at_start = p;
    at_start.expert_slots = f.fill.start_slots;
    f.tok_s_one = PredictDecodeTokS(DecodeStepBytes(at_start, config, summary.decode, 1), 1, f.rates);
    f.tok_s_many = PredictDecodeTokS(DecodeStepBytes(at_start, config, summary.decode, f.parallel), f.parallel, f.rates);
  }
  if (args.count("json")) {
    std::cout << ToJson(f).dump(2) << std::endl;
  } else {
    PrintText(f);
  }
  return 0;
}

const RegisterCommand kRegister("plan", "What this machine will do with a checkpoint: memory, context, predicted speed",
                                &RunPlan);

}  // namespace
}  // namespace dsv4::cli
