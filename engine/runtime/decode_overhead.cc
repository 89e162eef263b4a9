#include "engine/runtime/decode_overhead.h"

#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/runtime/sequence_runner.h"
#include "loader/checkpoint.h"
#include "loader/error.h"
#include "loader/process_memory.h"
#include "loader/synth.h"
#include "loader/weight_store.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMostLayers = 4;
// Enough to decode every layer kind a few times; the vocabulary only sizes
// the head, which the roofline prices.
constexpr int64_t kMostVocab = 4096;
constexpr int kPromptTokens = 8;
constexpr int kWarmSteps = 2;
constexpr int kTimedSteps = 15;

// The checkpoint's first `layers` main layers, no MTP block, and only the
// experts a token picks (so every step reads each of them, as the roofline
// counts: k experts a layer).
ModelConfig TimedConfig(const ModelConfig& config, int64_t layers) {
  ModelConfig c = config;
  c.num_hidden_layers = layers;
  c.num_nextn_predict_layers = 0;
  c.compress_ratios.resize(layers);
  c.num_hash_layers = std::min(c.num_hash_layers, layers);
  c.n_routed_experts = c.num_experts_per_tok;
  c.vocab_size = std::min(c.vocab_size, kMostVocab);
  c.bos_token_id = std::min(c.bos_token_id, c.vocab_size - 1);
  c.eos_token_id = std::min(c.eos_token_id, c.vocab_size - 1);
  return c;
}

// A directory of its own under the system's temporary one, removed with
// everything in it when done.
class TempDir {
 public:
  TempDir() {
    std::error_code ec;
    const fs::path base = fs::temp_directory_path(ec);
    if (ec) throw Error("no temporary directory (TMPDIR, else /tmp): " + ec.message());
    std::string pattern = (base / "dsv4-decode-overhead-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(pattern + ": cannot create a temporary directory (" + std::strerror(errno) + ")");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Loads `timed` as zero-weight sparse shards and times its decode steps.
DecodeOverhead TimeDecodeSteps(const ModelConfig& timed, Numerics numerics, const DecodeReadRates& rates) {
  // What earlier probes freed stays in the heap (RetainFreedMemory); the
  // model below is mapped apart from it, so give it back first, and the
  // two together stay within the room the plan gave each.
  ReleaseFreedMemory();
  TempDir dir;
  SynthOptions synth;
  synth.zero_weights = true;
  SynthesizeCheckpoint(timed, synth, dir.path());
  Checkpoint checkpoint(dir.path());
  // Read with O_DIRECT where the filesystem allows: the holes then leave no
  // page cache beside the weights.
  WeightStore store(checkpoint, WeightStoreOptions{});
  Model model(checkpoint, numerics);
  SequenceRunner runner(model, 0);

  std::vector<int32_t> prompt;
  for (int i = 0; i < kPromptTokens; ++i) prompt.push_back(static_cast<int32_t>((i * 7 + 3) % timed.vocab_size));
  runner.Feed(prompt, false);
  std::vector<double> steps;
  for (int i = 0; i < kWarmSteps + kTimedSteps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    runner.Feed({static_cast<int32_t>(i % timed.vocab_size)}, false);
    if (i >= kWarmSteps) steps.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  MemoryPlan resident;
  resident.kv = SequenceState::Size(timed, numerics);
  DecodeReadRates reads = rates;
  reads.step_overhead_seconds = 0;
  const double tok_s =
      PredictDecodeTokS(DecodeStepBytes(resident, timed, SummarizeConfig(timed, dir.path()).decode, 1), 1, reads);
  DecodeOverhead result;
  result.layers = timed.num_hidden_layers;
  result.weight_bytes = store.stats().resident_bytes;
  result.step_seconds = Median(steps);
  result.roofline_seconds = tok_s > 0 ? 1 / tok_s : 0;
  result.seconds_per_layer = std::max(0.0, result.step_seconds - result.roofline_seconds) / static_cast<double>(result.layers);
  return result;
}

}  // namespace

DecodeOverhead MeasureDecodeOverhead(const ModelConfig& config, Numerics numerics, const DecodeReadRates& rates,
                                     int64_t max_bytes) {
  int64_t layers = std::min(kMostLayers, config.num_hidden_layers);
  while (layers > 0 && SynthesizedBytes(TimedConfig(config, layers)) > static_cast<uint64_t>(max_bytes)) --layers;
  DecodeOverhead result;
  if (layers == 0) {
    result.not_timed = "one layer's weights exceed the " + FormatBytes(max_bytes) + " the plan leaves";
    return result;
  }
  try {
    result = TimeDecodeSteps(TimedConfig(config, layers), numerics, rates);
  } catch (const Error& e) {
    result.not_timed = e.what();
    return result;
  }
  result.checkpoint_step_seconds = result.seconds_per_layer * static_cast<double>(config.num_hidden_layers);
  return result;
}

}  // namespace dsv4
