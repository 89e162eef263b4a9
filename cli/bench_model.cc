#include "cli/bench_model.h"

#include "simd/matmul.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>

#include "cli/arguments.h"
#include "cli/bench_plot.h"
#include "cli/output_file.h"
#include "cli/thread_options.h"
#include "engine/model/numerics.h"
#include "engine/model/paged_experts.h"
#include "engine/runtime/decode_overhead.h"
#include "engine/runtime/memory_plan.h"
#include "engine/runtime/progress_line.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/scheduler.h"
#include "engine/runtime/sequence_runner.h"
#include "loader/error.h"
#include "loader/memory_limits.h"
#include "loader/model_summary.h"
#include "loader/process_memory.h"
#include "simd/matrix_engine.h"
#include "simd/roofline.h"

namespace dsv4::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double Round(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

// "1k,8k,32k" (k = 1024) or plain numbers.
std::vector<int64_t> ParseDepths(const std::string& text) {
  std::vector<int64_t> depths;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    std::string item = text.substr(start, comma - start);
    int64_t scale = 1;
    if (!item.empty() && (item.back() == 'k' || item.back() == 'K')) {
      scale = 1024;
      item.pop_back();
    }
    char* end = nullptr;
    errno = 0;
    const long long value = item.empty() ? 0 : std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 1) {
      throw Error("--depths: \"" + text.substr(start, comma - start) + "\" is not a depth (use e.g. 1k,8k,32k)");
    }
    if (errno == ERANGE || value > std::numeric_limits<int32_t>::max() / scale) {
      throw Error("--depths: \"" + text.substr(start, comma - start) + "\" is too large (a depth is a token count)");
    }
    depths.push_back(value * scale);
    start = comma + 1;
  }
  return depths;
}

// Deterministic ids spread over the vocabulary (a multiplicative hash of the
// index), the same on every run so that runs are comparable.
std::vector<int32_t> SyntheticTokens(int64_t count, int64_t vocab, uint64_t stream) {
  std::vector<int32_t> ids(count);
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t h = (static_cast<uint64_t>(i) + 1 + (stream << 32)) * 0x9E3779B97F4A7C15ull;
    ids[i] = static_cast<int32_t>((h >> 33) % static_cast<uint64_t>(vocab));
  }
  return ids;
}

std::vector<std::string> ShardFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
  }
  return files;
}

// Asks the kernel to forget the file's cached pages (clean pages nobody maps
// go); returns the bytes still cached afterwards, from mincore.
int64_t DropPageCache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  struct stat st {};
  int64_t cached = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    void* map = ::mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      const long page = ::sysconf(_SC_PAGESIZE);
      std::vector<unsigned char> resident((st.st_size + page - 1) / page);
      if (::mincore(map, st.st_size, resident.data()) == 0) {
        for (unsigned char r : resident) cached += (r & 1) ? page : 0;
      }
      ::munmap(map, st.st_size);
    }
  }
  ::close(fd);
  return cached;
}

// Bytes of weights one decode token reads besides its routed experts: every
// dense tensor of the main layers and the head, one embedding row and one row
// of each hash table.
int64_t DenseBytesPerToken(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  int64_t bytes = 0;
  for (const TensorSpec& spec : checkpoint.schema()) {
    if (spec.block >= c.num_hidden_layers || spec.name.find(".ffn.experts.") != std::string::npos) continue;
    if (spec.name == "embed.weight") {
      bytes += c.hidden_size * 2;
    } else if (spec.role == TensorRole::kHashTable) {
      bytes += c.num_experts_per_tok * 8;
    } else {
      bytes += static_cast<int64_t>(checkpoint.Get(spec.name).bytes);
    }
  }
  return bytes;
}

// Multiply-adds per token row of the weight matrices a token runs through:
// every dense linear weight of the main layers, the head, and
// num_experts_per_tok routed experts (the attention over the KV rows, small
// at short contexts, is left out).
double FlopsPerToken(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  double dense = 0, expert = 0;
  for (const TensorSpec& spec : checkpoint.schema()) {
    if (spec.block >= c.num_hidden_layers || spec.name == "embed.weight") continue;
    const bool linear = spec.role == TensorRole::kFp8Weight || spec.role == TensorRole::kFp4Weight ||
                        spec.role == TensorRole::kBf16Weight || spec.role == TensorRole::kEmbedding ||
                        spec.role == TensorRole::kHcFn;
    if (!linear) continue;
    double elements = 1;
    for (int64_t d : spec.shape) elements *= static_cast<double>(d);
    if (spec.role == TensorRole::kFp4Weight) elements *= 2;  // two E2M1 codes per stored byte
    if (spec.name.find(".ffn.experts.") != std::string::npos) {
      expert += elements;
    } else {
      dense += elements;
    }
  }
  const double experts_per_layer = static_cast<double>(c.n_routed_experts);
  return 2.0 * (dense + expert / experts_per_layer * c.num_experts_per_tok);
}

// Work done in one timed phase, with the counters' growth over it.
struct Phase {
  int64_t tokens = 0;
  double seconds = 0;
  int64_t expert_bytes = 0;  // routed-expert bytes the forward passes used
  ExpertCacheStats cache;
  double TokensPerSecond() const { return seconds > 0 ? tokens / seconds : 0; }
};

struct Run {
  std::string name;
  int64_t context = 0;  // prompt tokens before the decode
  Phase prefill, decode;
  std::vector<int32_t> generated;
};

// Decode of many sequences at once through the scheduler: the steps that
// carried decode rows only, and their roofline time (the larger of the
// weight bytes they touched over the read bandwidth and their flops over
// the FMA peak).
struct ParallelRun {
  int64_t sequences = 0;
  int64_t steps = 0;
  int64_t rows = 0;
  double seconds = 0;
  double roofline_seconds = 0;
  int64_t weight_bytes = 0;
  double TokensPerSecond() const { return seconds > 0 ? rows / seconds : 0; }
};

// Speculative decoding of one sequence with k drafts a step
// (docs/speculative.md): plain greedy decode, the same with an oracle draft
// (the plain run's own continuation: every draft accepted), and with the MTP
// block's drafts. Seconds and steps count the decode-only steps.
struct SpeculativeRun {
  int64_t k = 1;
  struct Decode {
    int64_t steps = 0, tokens = 0;
    double seconds = 0, mtp_seconds = 0;
    int64_t drafts = 0, accepted = 0;
    double TokensPerSecond() const { return seconds > 0 ? tokens / seconds : 0; }
    double SecondsPerStep() const { return steps ? seconds / steps : 0; }
  };
  Decode plain, oracle, mtp;
  double VerifyCostRatio() const { return oracle.SecondsPerStep() / std::max(plain.SecondsPerStep(), 1e-12); }
  // The MTP block's time per decode step (it runs after the forward call).
  double MtpSecondsPerStep() const { return mtp.steps ? mtp.mtp_seconds / mtp.steps : 0; }
  double Acceptance() const { return mtp.drafts ? static_cast<double>(mtp.accepted) / mtp.drafts : 0; }
  // Each step verifies k drafts (the verify step's measured cost, plus the
  // MTP block's once per depth) and emits 1 + a + ... + a^k tokens when each
  // draft is accepted with probability a.
  double PredictedTokensPerSecond(double acceptance) const {
    const double step = oracle.SecondsPerStep() + k * MtpSecondsPerStep();
    double tokens = 1, reach = 1;
    for (int64_t j = 0; j < k; ++j) tokens += reach *= acceptance;
    return step > 0 ? tokens / step : 0;
  }
};

class Bench {
 public:
  Bench(StoredModel& stored, int64_t chunk) : stored_(stored), chunk_(chunk) {}

  // Prefills `prompt`, then decodes `gen` tokens greedily, one forward pass each.
  Run Measure(const std::string& name, const std::vector<int32_t>& prompt, int64_t gen) {
    Run run;
    run.name = name;
    run.context = static_cast<int64_t>(prompt.size());
    const ModelConfig& config = stored_.model->config();
    SequenceRunner runner(*stored_.model, chunk_);
    std::fprintf(stderr, "bench: %s: prefill %zu tokens\n", name.c_str(), prompt.size());
    Start();
    std::vector<float> logits = runner.Feed(prompt, false);
    run.prefill = Stop(static_cast<int64_t>(prompt.size()));
    Start();
    ProgressLine progress;
    for (int64_t i = 0; i < gen; ++i) {
      const int32_t next = ArgMax(logits.data(), config.vocab_size);
      run.generated.push_back(next);
      logits = runner.Feed({next}, false);
      progress.Update(i + 1 == gen, "bench: %s: decode %lld/%lld", name.c_str(), static_cast<long long>(i + 1),
                      static_cast<long long>(gen));
    }
    run.decode = Stop(gen);
    return run;
  }

  // `sequences` prompts of `prompt_tokens` each, decoded greedily for `gen`
  // tokens each, all scheduled together.
  ParallelRun MeasureParallel(int64_t sequences, int64_t prompt_tokens, int64_t gen, double read_gbps,
                              double fma_gflops) {
    const ModelConfig& config = stored_.model->config();
    SchedulerOptions options;
    options.max_sequences = sequences;
    options.step_tokens = chunk_;
    Scheduler scheduler(*stored_.model, nullptr, options);
    for (int64_t i = 0; i < sequences; ++i) {
      GenerationRequest request;
      request.prompt = SyntheticTokens(prompt_tokens, config.vocab_size, 100 + i);
      request.sampling.temperature = 0;
      request.sampling.seed = i;
      request.sampling.max_tokens = gen;
      scheduler.Submit(std::move(request), nullptr);
    }
    const double dense_bytes = static_cast<double>(DenseBytesPerToken(*stored_.checkpoint));
    const double flops_per_row = FlopsPerToken(*stored_.checkpoint);
    ParallelRun run;
    run.sequences = sequences;
    ProgressLine progress;
    while (!scheduler.Idle()) {
      const Scheduler::Stats before = scheduler.stats();
      const int64_t expert_bytes = stored_.experts->acquired_bytes();
      scheduler.Step();
      const Scheduler::Stats after = scheduler.stats();
      if (after.steps == before.steps || after.prefill_rows != before.prefill_rows) continue;
      const int64_t rows = after.decode_rows - before.decode_rows;
      const double bytes = dense_bytes + static_cast<double>(stored_.experts->acquired_bytes() - expert_bytes);
      ++run.steps;
      run.rows += rows;
      run.seconds += after.forward_seconds - before.forward_seconds;
      run.weight_bytes += static_cast<int64_t>(bytes);
      run.roofline_seconds += std::max(bytes / (read_gbps * 1e9), flops_per_row * rows / (fma_gflops * 1e9));
      progress.Update(scheduler.Idle(), "bench: parallel %lld: %lld decode steps", static_cast<long long>(sequences),
                      static_cast<long long>(run.steps));
    }
    return run;
  }

  SpeculativeRun MeasureSpeculative(const std::vector<int32_t>& prompt, int64_t gen, int64_t k) {
    SpeculativeRun run;
    run.k = k;
    std::vector<int32_t> continuation;
    run.plain = DecodeOne(prompt, gen, k, false, {}, &continuation);
    std::vector<int32_t> truth = prompt;
    truth.insert(truth.end(), continuation.begin(), continuation.end());
    run.oracle = DecodeOne(prompt, gen, k, false, [truth](const std::vector<int32_t>& tokens) {
      return tokens.size() < truth.size() ? truth[tokens.size()] : -1;
    });
    run.mtp = DecodeOne(prompt, gen, k, true, {});
    return run;
  }

 private:
  // One greedy sequence through the scheduler, timing its decode-only steps.
  SpeculativeRun::Decode DecodeOne(const std::vector<int32_t>& prompt, int64_t gen, int64_t k, bool mtp,
                                   std::function<int32_t(const std::vector<int32_t>&)> drafter,
                                   std::vector<int32_t>* generated = nullptr) {
    SchedulerOptions options;
    options.step_tokens = chunk_;
    options.speculative = mtp;
    options.draft_tokens = k;
    Scheduler scheduler(*stored_.model, nullptr, options);
    GenerationRequest request;
    request.prompt = prompt;
    request.sampling.temperature = 0;
    request.sampling.seed = 0;
    request.sampling.max_tokens = gen;
    request.drafter = std::move(drafter);
    scheduler.Submit(std::move(request), [generated](const GenerationUpdate& u) {
      for (const Sampled& s : u.tokens) {
        if (generated) generated->push_back(s.token);
      }
    });
    SpeculativeRun::Decode d;
    const char* name = mtp ? "mtp" : generated ? "plain" : "oracle";
    ProgressLine progress;
    while (!scheduler.Idle()) {
      const Scheduler::Stats before = scheduler.stats();
      scheduler.Step();
      const Scheduler::Stats after = scheduler.stats();
      if (after.steps == before.steps || after.prefill_rows != before.prefill_rows) continue;
      ++d.steps;
      d.seconds += after.forward_seconds - before.forward_seconds + after.mtp_seconds - before.mtp_seconds;
      d.mtp_seconds += after.mtp_seconds - before.mtp_seconds;
      // Tokens emitted: one per step, and one more per accepted draft.
      d.tokens += 1 + after.accepted_drafts - before.accepted_drafts;
      progress.Update(scheduler.Idle(), "bench: speculative %s: %lld decode steps", name,
                      static_cast<long long>(d.steps));
    }
    const Scheduler::Stats stats = scheduler.stats();
    d.drafts = stats.drafts;
    d.accepted = stats.accepted_drafts;
    return d;
  }

  ExpertCacheStats CacheStats() const {
    const ExpertCache* cache = stored_.store->expert_cache();
    return cache ? cache->stats() : ExpertCacheStats{};
  }
  void Start() {
    start_cache_ = CacheStats();
    start_bytes_ = stored_.experts->acquired_bytes();
    start_acquisitions_ = stored_.experts->acquisitions();
    start_time_ = Clock::now();
  }
  Phase Stop(int64_t tokens) {
    Phase phase;
    phase.seconds = SecondsSince(start_time_);
    phase.tokens = tokens;
    phase.expert_bytes = stored_.experts->acquired_bytes() - start_bytes_;
    const ExpertCacheStats now = CacheStats();
    phase.cache.hits = now.hits - start_cache_.hits;
    phase.cache.misses = now.misses - start_cache_.misses;
    phase.cache.prefetched = now.prefetched - start_cache_.prefetched;
    phase.cache.bytes_read = now.bytes_read - start_cache_.bytes_read;
    phase.cache.read_seconds = now.read_seconds - start_cache_.read_seconds;
    phase.cache.stall_seconds = now.stall_seconds - start_cache_.stall_seconds;
    // With every expert resident, every acquisition is a hit.
    if (!stored_.store->expert_cache()) phase.cache.hits = stored_.experts->acquisitions() - start_acquisitions_;
    return phase;
  }

  StoredModel& stored_;
  int64_t chunk_;
  ExpertCacheStats start_cache_;
  int64_t start_bytes_ = 0, start_acquisitions_ = 0;
  Clock::time_point start_time_;
};

struct Report {
  std::string dir;
  int threads = 0;
  std::string numa;  // the team's placement, TeamPlacement::Summary
  Numerics numerics = Numerics::kDefault;
  int64_t mem_budget = -1;
  bool mem_budget_auto = true;
  bool direct_io = false;
  double predicted_decode_tok_s = 0;  // the memory plan's roofline (dsv4 plan) for the cache the runs had
  double step_overhead_s = 0;         // in it: a decode step's time beyond its reads (decode_overhead.h)
  int64_t filled_slots = 0;           // cache slots holding an expert after the runs (paging only)
  double fresh_memory_gbps = 0;       // the first touch of the cache's fresh slots (paging only)
  double read_gbps = 0;      // DRAM, measured
  double disk_gbps = 0;      // sequential reads the way the cache reads, measured (paging only)
  int64_t cold_cached_bytes = 0;  // page cache of the shards left when the cold load began
  double load_seconds = 0;
  WeightStoreStats store;
  int64_t dense_bytes_per_token = 0;
  int64_t peak_rss = 0;
  std::vector<Run> runs;  // cold, warm, then one per depth
  double fma_gflops = 0;  // measured FMA peak, with --parallel
  std::vector<ParallelRun> parallel;
  std::optional<SpeculativeRun> speculative;

  const Run& Warm() const { return runs[1]; }
  double WeightBytesPerToken(const Run& run) const {
    return dense_bytes_per_token + (run.decode.tokens ? static_cast<double>(run.decode.expert_bytes) / run.decode.tokens : 0);
  }
  double AchievedGbps(const Run& run) const { return WeightBytesPerToken(run) * run.decode.TokensPerSecond() / 1e9; }
  double TimeToFirstToken() const { return load_seconds + runs[0].prefill.seconds; }
};

double HitRate(const ExpertCacheStats& s) {
  return s.hits + s.misses ? static_cast<double>(s.hits) / (s.hits + s.misses) : 0;
}
double DiskGbps(const ExpertCacheStats& s) { return s.read_seconds > 0 ? s.bytes_read / s.read_seconds / 1e9 : 0; }

Json CacheJson(const Report& r, const ExpertCacheStats& s) {
  Json j = {{"hits", s.hits},
            {"misses", s.misses},
            {"hit_rate", Round(HitRate(s), 4)},
            {"prefetched", s.prefetched},
            {"bytes_read", s.bytes_read},
            {"disk_GBps", Round(DiskGbps(s), 3)},
            {"stall_s", Round(s.stall_seconds, 3)}};
  if (r.store.paging) {
    j["disk_GBps_measured"] = Round(r.disk_gbps, 3);
    j["disk_fraction"] = Round(r.disk_gbps > 0 ? DiskGbps(s) / r.disk_gbps : 0, 4);
  }
  return j;
}

Json RunJson(const Report& r, const Run& run) {
  return {{"context", run.context},
          {"prefill_tokens", run.prefill.tokens},
          {"prefill_s", Round(run.prefill.seconds, 3)},
          {"prefill_tok_s", Round(run.prefill.TokensPerSecond(), 3)},
          {"decode_tokens", run.decode.tokens},
          {"decode_s", Round(run.decode.seconds, 3)},
          {"decode_tok_s", Round(run.decode.TokensPerSecond(), 3)},
          {"weight_bytes_per_token", static_cast<int64_t>(r.WeightBytesPerToken(run))},
          {"achieved_GBps", Round(r.AchievedGbps(run), 3)},
          {"roof_fraction", Round(r.AchievedGbps(run) / r.read_gbps, 4)},
          {"expert_cache", CacheJson(r, run.decode.cache)},
          {"prefill_expert_cache", CacheJson(r, run.prefill.cache)}};
}

void PrintJson(const Report& r) {
  const Run& warm = r.Warm();
  Json out;
  out["model"] = r.dir;
  out["threads"] = r.threads;
  out["numa"] = r.numa;
  out["numerics"] = NumericsName(r.numerics);
  out["cpu"] = {{"model", CpuModelName()}, {"simd_target", MatMulTargetName()}, {"bf16_unit", Bf16MatrixUnit()}};
  out["mem_budget_bytes"] = r.mem_budget;
  out["mem_budget_auto"] = r.mem_budget_auto;
  out["paging"] = r.store.paging;
  out["direct_io"] = r.direct_io;
  out["dense_weight_bytes"] = r.store.dense_bytes;
  out["expert_weight_bytes"] = r.store.expert_bytes;
  out["resident_weight_bytes"] = r.store.resident_bytes;
  out["cache_slots"] = r.store.cache_slots;
  out["cache_slots_filled"] = r.filled_slots;
  out["cache_fresh_memory_GBps"] = Round(r.fresh_memory_gbps, 3);
  out["load_s"] = Round(r.load_seconds, 3);
  out["time_to_first_token_s"] = Round(r.TimeToFirstToken(), 3);
  out["cold_page_cache_bytes"] = r.cold_cached_bytes;
  out["prefill_tok_s"] = Round(warm.prefill.TokensPerSecond(), 3);
  out["decode_tok_s"] = Round(warm.decode.TokensPerSecond(), 3);
  out["weight_bytes_per_token"] = static_cast<int64_t>(r.WeightBytesPerToken(warm));
  out["achieved_GBps"] = Round(r.AchievedGbps(warm), 3);
  out["read_GBps_measured"] = Round(r.read_gbps, 3);
  out["roof_fraction"] = Round(r.AchievedGbps(warm) / r.read_gbps, 4);
  out["predicted_decode_tok_s"] = Round(r.predicted_decode_tok_s, 3);
  out["predicted_step_overhead_s"] = Round(r.step_overhead_s, 6);
  out["measured_over_predicted"] =
      Round(r.predicted_decode_tok_s > 0 ? warm.decode.TokensPerSecond() / r.predicted_decode_tok_s : 0, 4);
  out["peak_rss_bytes"] = r.peak_rss;
  out["generated_ids"] = warm.generated;
  out["expert_cache"] = CacheJson(r, warm.decode.cache);
  out["cold"] = RunJson(r, r.runs[0]);
  out["warm"] = RunJson(r, warm);
  out["depths"] = Json::array();
  for (size_t i = 2; i < r.runs.size(); ++i) out["depths"].push_back(RunJson(r, r.runs[i]));
  if (!r.parallel.empty()) {
    out["fma_GFLOPs_measured"] = Round(r.fma_gflops, 1);
    out["parallel"] = Json::array();
    for (const ParallelRun& p : r.parallel) {
      out["parallel"].push_back({{"sequences", p.sequences},
                                 {"decode_steps", p.steps},
                                 {"decode_tok_s", Round(p.TokensPerSecond(), 3)},
                                 {"weight_bytes_per_step", p.steps ? p.weight_bytes / p.steps : 0},
                                 {"roof_fraction", Round(p.seconds > 0 ? p.roofline_seconds / p.seconds : 0, 4)}});
    }
  }
  if (r.speculative) {
    const SpeculativeRun& sp = *r.speculative;
    Json predicted = Json::array();
    for (double a : {0.6, 0.8, 0.9}) {
      predicted.push_back({{"acceptance", a}, {"decode_tok_s", Round(sp.PredictedTokensPerSecond(a), 3)}});
    }
    out["speculative"] = {{"k", sp.k},
                          {"plain_decode_tok_s", Round(sp.plain.TokensPerSecond(), 3)},
                          {"oracle_decode_tok_s", Round(sp.oracle.TokensPerSecond(), 3)},
                          {"verify_cost_ratio", Round(sp.VerifyCostRatio(), 4)},
                          {"mtp_step_cost_ratio",
                           Round(sp.MtpSecondsPerStep() / std::max(sp.plain.SecondsPerStep(), 1e-12), 4)},
                          {"mtp_acceptance", Round(sp.Acceptance(), 4)},
                          {"mtp_drafts", sp.mtp.drafts},
                          {"predicted", predicted}};
  }
  std::printf("%s\n", out.dump().c_str());
}

// One row per run, for --md and --csv.
std::vector<std::vector<std::string>> Rows(const Report& r) {
  auto fixed = [](double v, int decimals) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
    return std::string(buffer);
  };
  std::vector<std::vector<std::string>> rows = {{"run", "context", "prefill tok/s", "decode tok/s",
                                                 "weight MB/token", "weight GB/s", "% of DRAM read",
                                                 "expert hit rate", "disk GB/s", "stall s"}};
  for (const Run& run : r.runs) {
    const ExpertCacheStats& c = run.decode.cache;
    rows.push_back({run.name, std::to_string(run.context), fixed(run.prefill.TokensPerSecond(), 2),
                    fixed(run.decode.TokensPerSecond(), 2), fixed(r.WeightBytesPerToken(run) / 1e6, 1),
                    fixed(r.AchievedGbps(run), 2), fixed(100 * r.AchievedGbps(run) / r.read_gbps, 1),
                    r.store.paging ? fixed(100 * HitRate(c), 1) + "%" : "resident",
                    r.store.paging ? fixed(DiskGbps(c), 3) : "-", fixed(c.stall_seconds, 2)});
  }
  return rows;
}

// Before a long run: the plot's directory must exist and take a new file.
void CheckPlotDirectory(const std::string& path) {
  if (path.empty()) throw Error("--plot: give a file name, e.g. --plot bench.svg");
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!std::filesystem::is_directory(dir) || ::access(dir.c_str(), W_OK) != 0) {
    throw Error("--plot " + path + ": cannot write into " + dir);
  }
}

std::string PlotOf(const Report& r) {
  PlotPanel by_context{"Speed against context", "context (tokens)", "tok/s", /*log_x=*/true, {}};
  PlotSeries decode{"decode", "#1f77b4", false, {}}, prefill{"prefill", "#ff7f0e", false, {}};
  PlotSeries roof{"decode roofline (weights / DRAM read)", "#1f77b4", true, {}};
  for (size_t i = 1; i < r.runs.size(); ++i) {  // the warm run, then the depths
    const Run& run = r.runs[i];
    const double x = std::max<double>(run.context, 1);
    decode.points.push_back({x, run.decode.TokensPerSecond()});
    prefill.points.push_back({x, run.prefill.TokensPerSecond()});
    const double bytes = r.WeightBytesPerToken(run);
    if (bytes > 0) roof.points.push_back({x, r.read_gbps * 1e9 / bytes});
  }
  by_context.series = {decode, roof, prefill};
  PlotPanel by_sequences{"Decode of many sequences", "sequences in parallel", "tok/s (all sequences)",
                         /*log_x=*/true, {}};
  PlotSeries measured{"decode", "#2ca02c", false, {}};
  PlotSeries bound{"roofline (bytes / DRAM read, flops / FMA peak)", "#2ca02c", true, {}};
  for (const ParallelRun& p : r.parallel) {
    measured.points.push_back({static_cast<double>(p.sequences), p.TokensPerSecond()});
    if (p.roofline_seconds > 0) bound.points.push_back({static_cast<double>(p.sequences), p.rows / p.roofline_seconds});
  }
  by_sequences.series = {measured, bound};
  char title[512];
  std::snprintf(title, sizeof title, "dsv4 bench: %s; %s, %d threads, %s kernels, numerics %s; DRAM read %.1f GB/s",
                r.dir.c_str(), CpuModelName().c_str(), r.threads, MatMulTargetName(), NumericsName(r.numerics),
                r.read_gbps);
  return RenderPlotSvg(title, {by_context, by_sequences});
}

void PrintCsv(const Report& r) {
  for (const auto& row : Rows(r)) {
    for (size_t i = 0; i < row.size(); ++i) std::printf("%s%s", i ? "," : "", row[i].c_str());
    std::printf("\n");
  }
}

void PrintMarkdown(const Report& r) {
  const double gb = 1e9;
  std::printf("dsv4 bench: %s, %d threads, numerics %s\n\n- %s\n", r.dir.c_str(), r.threads, NumericsName(r.numerics),
              r.numa.c_str());
  std::printf("- machine: %s, %s kernels, bf16 unit %s; DRAM read %.2f GB/s measured", CpuModelName().c_str(),
              MatMulTargetName(), Bf16MatrixUnit().empty() ? "none" : Bf16MatrixUnit().c_str(), r.read_gbps);
  if (r.store.paging) std::printf(", disk read %.3f GB/s measured (%s)", r.disk_gbps, r.direct_io ? "O_DIRECT" : "buffered");
  std::printf("\n- weights: dense %.3f GB resident, routed experts %.3f GB ", r.store.dense_bytes / gb,
              r.store.expert_bytes / gb);
  if (r.store.paging) {
    std::printf("paged through %lld cache slots of %.2f MB (%lld filled after the runs; fresh slots touched at %.2f "
                "GB/s)\n",
                static_cast<long long>(r.store.cache_slots), r.store.slot_bytes / 1e6,
                static_cast<long long>(r.filled_slots), r.fresh_memory_gbps);
  } else {
    std::printf("resident\n");
  }
  std::printf("- resident weights %.3f GB (budget %.3f GB, %s), peak RSS %.3f GB\n", r.store.resident_bytes / gb,
              r.mem_budget / gb, r.mem_budget_auto ? "auto" : "--mem-budget", r.peak_rss / gb);
  std::printf("- decode predicted by the memory plan (bytes over measured kernel and disk rates, plus %.2f ms a step "
              "beyond the reads) %.2f tok/s; warm measured/predicted %.2f\n",
              1e3 * r.step_overhead_s, r.predicted_decode_tok_s,
              r.predicted_decode_tok_s > 0 ? r.Warm().decode.TokensPerSecond() / r.predicted_decode_tok_s : 0.0);
  std::printf("- cold start: load %.2f s (page cache of the shards dropped first, %.1f MB left), time to first token %.2f s\n\n",
              r.load_seconds, r.cold_cached_bytes / 1e6, r.TimeToFirstToken());
  const auto rows = Rows(r);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::printf("|");
    for (const std::string& cell : rows[i]) std::printf(" %s |", cell.c_str());
    std::printf("\n");
    if (i == 0) {
      std::printf("|");
      for (size_t c = 0; c < rows[i].size(); ++c) std::printf("%s", c < 2 ? "---|" : "---:|");
      std::printf("\n");
    }
  }
  std::printf("\ngenerated (warm): ");
  for (size_t i = 0; i < r.Warm().generated.size(); ++i) std::printf("%s%d", i ? "," : "", r.Warm().generated[i]);
  std::printf("\n");
}

}  // namespace

int RunModelBench(int argc, char** argv) {
  // A throughput benchmark measures the fast path: the SIMD kernels.
  SetMatMulKernels(MatMulImpl::kSimd);
  cxxopts::Options options("dsv4 bench",
                           "End-to-end throughput of a checkpoint against this machine's DRAM and disk bandwidth "
                           "(dsv4 bench --kernels measures the kernels alone)");
  options.add_options()
      ("m,model", "Model directory (Hugging Face layout)", cxxopts::value<std::string>())
      ("prompt-tokens", "Prompt length of the cold and warm runs", cxxopts::value<int64_t>()->default_value("512"))
      ("gen-tokens", "Tokens decoded per run", cxxopts::value<int64_t>()->default_value("32"))
      ("depths", "Also decode after prompts of these lengths, e.g. 1k,8k,32k", cxxopts::value<std::string>())
      ("parallel", "Also decode this many sequences at once (64-token prompts), e.g. 1,4,16",
       cxxopts::value<std::string>())
      ("speculative", "oracle: also measure speculative decoding (plain, an oracle draft that is always "
       "right, and the MTP block's drafts; JSON and stderr)", cxxopts::value<std::string>())
      ("draft-tokens", "With --speculative: drafts per step, k (1 to 3)", cxxopts::value<int64_t>()->default_value("1"))
      ("mem-budget", "Resident weight bytes (dense + expert cache), e.g. 800M; auto: the memory plan (dsv4 plan)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("chunk", "Prefill rows per forward pass", cxxopts::value<int64_t>()->default_value("512"))
      ("numerics", kNumericsHelp, cxxopts::value<std::string>()->default_value("default"))
      ("mlock", "Lock the resident weights in RAM")
      ("buffered-io", "Read weights through the page cache instead of with O_DIRECT")
      ("md", "Markdown table (the default)")
      ("csv", "CSV rows")
      ("json", "One JSON object")
      ("plot", "Also draw the run into this SVG file: decode and prefill tok/s against context depth (--depths) "
       "and decode tok/s against sequences in parallel (--parallel), each beside this machine's roofline",
       cxxopts::value<std::string>());
  AddThreadOptions(options);
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  if (!args.count("model")) throw Error("-m/--model DIR is required");
  if (args.count("md") + args.count("csv") + args.count("json") > 1) throw Error("give one of --md, --csv, --json");
  const std::string dir = args["model"].as<std::string>();
  const std::string plot_path = args.count("plot") ? args["plot"].as<std::string>() : "";
  if (args.count("plot")) CheckPlotDirectory(plot_path);
  const int64_t prompt_tokens = args["prompt-tokens"].as<int64_t>();
  const int64_t gen_tokens = args["gen-tokens"].as<int64_t>();
  const int64_t chunk = args["chunk"].as<int64_t>();
  if (prompt_tokens < 1) throw Error("--prompt-tokens must be >= 1");
  if (gen_tokens < 1) throw Error("--gen-tokens must be >= 1");
  if (chunk < 1) throw Error("--chunk must be >= 1");
  const std::vector<int64_t> depths = args.count("depths") ? ParseDepths(args["depths"].as<std::string>())
                                                           : std::vector<int64_t>{};
  const TeamPlacement& placement = StartThreadTeam(args);
  const int threads = placement.threads;
  const std::string budget_text = args["mem-budget"].as<std::string>();
  WeightStoreOptions store_options;
  store_options.lock_memory = args.count("mlock") > 0;
  store_options.direct_io = args.count("buffered-io") == 0;
  const Numerics numerics = ParseNumerics(args["numerics"].as<std::string>());
  CheckNumericsSupported(numerics);
  if (!fs::is_directory(dir)) throw Error(dir + ": model directory not found");
  // Lengths are checked against the config before anything long runs.
  const ModelConfig config = ModelConfig::FromFile((fs::path(dir) / "config.json").string());
  int64_t longest = prompt_tokens;
  for (int64_t d : depths) longest = std::max(longest, d);
  if (longest + gen_tokens > config.max_position_embeddings) {
    throw Error("a run of " + std::to_string(longest + gen_tokens) + " tokens exceeds max_position_embeddings (" +
                std::to_string(config.max_position_embeddings) + ")");
  }

  const std::vector<int64_t> parallel = args.count("parallel") ? ParseDepths(args["parallel"].as<std::string>())
                                                               : std::vector<int64_t>{};
  if (args.count("speculative")) {
    if (args["speculative"].as<std::string>() != "oracle") throw Error("--speculative takes oracle");
    if (config.num_nextn_predict_layers == 0) throw Error("--speculative: this checkpoint has no MTP block");
  }
  const int64_t draft_tokens = args["draft-tokens"].as<int64_t>();
  if (draft_tokens < 1 || draft_tokens > DraftRecord::kDepths) {
    throw Error("--draft-tokens must be 1 to " + std::to_string(DraftRecord::kDepths));
  }
  // The memory plan covers the longest run and the most sequences; the
  // probes below stay inside it too.
  auto checkpoint = std::make_unique<Checkpoint>(dir);
  MemoryPlanRequest plan_request;
  plan_request.model = dir;
  plan_request.mem_budget = budget_text == "auto" ? -1 : ParseBytes(budget_text, "--mem-budget");
  plan_request.parallel = parallel.empty() ? 1 : *std::max_element(parallel.begin(), parallel.end());
  plan_request.context_tokens = longest + gen_tokens;
  plan_request.chunk = chunk;
  plan_request.longest_prompt = longest;
  store_options.mtp_resident = args.count("speculative") > 0;
  const MemoryPlan plan = PlanMemory(ReadMemoryLimits(), WeightStore::Measure(*checkpoint, store_options.mtp_resident), config,
                                     SequenceState::Size(config, numerics), plan_request);
  std::fprintf(stderr, "bench: %s\n", plan.Summary().c_str());
  store_options.mem_budget = plan.weight_budget;

  Report report;
  report.dir = dir;
  report.threads = threads;
  report.numerics = numerics;
  report.mem_budget = plan.weight_budget;
  report.mem_budget_auto = plan.automatic;
  report.numa = placement.Summary(Topology::OfThisProcess());
  // Probed before and after the runs; the better figure is the machine's (a
  // busy neighbour can only make a probe slower).
  auto probe_dram = [&] {
    const double gbps = MeasureReadBandwidth(plan.ProbeBytes(ReadProbeBytes()), 16);
    ReleaseFreedMemory();
    std::fprintf(stderr, "bench: DRAM read %.2f GB/s with %d threads\n", gbps, threads);
    report.read_gbps = std::max(report.read_gbps, gbps);
  };
  probe_dram();

  // Cold: nothing of the checkpoint in the page cache.
  for (const std::string& file : ShardFiles(dir)) report.cold_cached_bytes += DropPageCache(file);
  // VmHWM restarts from the current RSS, so the probes' buffers do not count
  // in the model's peak.
  ResetPeakRss();
  std::fprintf(stderr, "bench: cold load of %s\n", dir.c_str());
  {  // The model lives for the runs only: the probes after them stay within the plan.
    const Clock::time_point load_start = Clock::now();
    StoredModel stored = LoadStoredModel(std::move(checkpoint), numerics, store_options);
    report.load_seconds = SecondsSince(load_start);
    report.store = stored.store->stats();
    report.direct_io = stored.store->expert_cache() && stored.store->expert_cache()->direct_io();
    report.dense_bytes_per_token = DenseBytesPerToken(*stored.checkpoint);
    std::fprintf(stderr, "bench: loaded in %.2f s: %.3f GB resident (%s)\n", report.load_seconds,
                 report.store.resident_bytes / 1e9, report.store.paging ? "paging experts" : "all in RAM");

    Bench bench(stored, chunk);
    const std::vector<int32_t> prompt = SyntheticTokens(prompt_tokens, config.vocab_size, 0);
    report.runs.push_back(bench.Measure("cold", prompt, gen_tokens));
    if (report.store.paging) {
      // Measured after the cold run so that it cannot warm anything that run reads.
      const std::string shard = *stored.checkpoint->Get(ExpertTensorNames(config, 0, 0)[0]).file;
      report.disk_gbps = MeasureFileReadBandwidth(shard, int64_t{512} << 20, report.store.slot_bytes,
                                                  store_options.direct_io);
      std::fprintf(stderr, "bench: disk read %.3f GB/s (%s)\n", report.disk_gbps, shard.c_str());
    }
    report.runs.push_back(bench.Measure("warm", prompt, gen_tokens));
    if (report.runs[0].generated != report.runs[1].generated) {
      throw Error("the cold and warm runs generated different tokens: the forward pass is not deterministic");
    }
    for (size_t i = 0; i < depths.size(); ++i) {
      const std::vector<int32_t> context = SyntheticTokens(depths[i], config.vocab_size, 1 + i);
      report.runs.push_back(bench.Measure("depth " + std::to_string(depths[i]), context, gen_tokens));
    }
    if (!parallel.empty()) {
      report.fma_gflops = MeasureFmaPeak(5);
      std::fprintf(stderr, "bench: FMA peak %.1f GFLOP/s\n", report.fma_gflops);
      for (const int64_t n : parallel) {
        report.parallel.push_back(bench.MeasureParallel(n, std::min<int64_t>(prompt_tokens, 64), gen_tokens,
                                                        report.read_gbps, report.fma_gflops));
      }
    }
    if (args.count("speculative")) {
      report.speculative = bench.MeasureSpeculative(prompt, gen_tokens, draft_tokens);
      const SpeculativeRun& sp = *report.speculative;
      std::fprintf(stderr,
                   "bench: speculative k=%lld: plain %.2f tok/s, oracle %.2f tok/s (%.2fx), verify step %.2fx a plain "
                   "one, MTP block %.2fx, MTP acceptance %.0f %% of %lld; predicted at 60/80/90 %%: %.2f / %.2f / "
                   "%.2f tok/s\n",
                   static_cast<long long>(sp.k), sp.plain.TokensPerSecond(), sp.oracle.TokensPerSecond(),
                   sp.oracle.TokensPerSecond() / std::max(sp.plain.TokensPerSecond(), 1e-12), sp.VerifyCostRatio(),
                   sp.MtpSecondsPerStep() / std::max(sp.plain.SecondsPerStep(), 1e-12), 100 * sp.Acceptance(),
                   static_cast<long long>(sp.mtp.drafts), sp.PredictedTokensPerSecond(0.6),
                   sp.PredictedTokensPerSecond(0.8), sp.PredictedTokensPerSecond(0.9));
    }
    report.peak_rss = ProcessStatusBytes("VmHWM");
    if (const ExpertCache* cache = stored.store->expert_cache()) {
      report.filled_slots = cache->filled_slots();
      const SlotFillCosts costs = cache->fill_costs();
      if (costs.touch_seconds > 0) report.fresh_memory_gbps = costs.touch_bytes / costs.touch_seconds / 1e9;
    }
  }
  probe_dram();
  DecodeReadRates rates;
  rates.ram_gbps = report.read_gbps;
  rates.disk_gbps = report.disk_gbps;
  const DecodeKernelRates kernels = MeasureDecodeKernelRates(plan.ProbeBytes(int64_t{512} << 20));
  rates.fp4_gbps = kernels.fp4_gbps;
  rates.fp8_gbps = kernels.fp8_gbps;
  rates.bf16_gbps = kernels.bf16_gbps;
  const DecodeOverhead overhead = MeasureDecodeOverhead(config, numerics, rates, plan.ProbeBytes(int64_t{1} << 30));
  rates.step_overhead_seconds = overhead.checkpoint_step_seconds;
  if (overhead.layers == 0) {
    std::fprintf(stderr, "bench: no decode step timed for the prediction (%s)\n", overhead.not_timed.c_str());
  }
  report.step_overhead_s = rates.step_overhead_seconds;
  // The roofline of the cache the runs had: where fresh memory is slower to
  // touch than the disk to read, the cache grows only as re-reads pay for it
  // (ExpertCache), and a short run does not fill it.
  MemoryPlan as_run = plan;
  if (report.store.paging) as_run.expert_slots = std::min(plan.expert_slots, report.filled_slots);
  report.predicted_decode_tok_s =
      PredictDecodeTokS(DecodeStepBytes(as_run, config, SummarizeConfig(config, dir).decode, 1), 1, rates);

  if (!plot_path.empty()) {
    WriteFileAtomically(plot_path, PlotOf(report));
    std::fprintf(stderr, "bench: drew %s\n", plot_path.c_str());
  }
  if (args.count("json")) {
    PrintJson(report);
  } else if (args.count("csv")) {
    PrintCsv(report);
  } else {
    PrintMarkdown(report);
  }
  return 0;
}

}  // namespace dsv4::cli
