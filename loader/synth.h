// Random-weight DeepSeek-V4 checkpoints in the official Hugging Face format,
// for any configuration: the test and demo models of dsv4. The weights are
// drawn so that activations stay finite and O(1) through every block
// (docs/checkpoint-format.md gives the distributions and why).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "loader/config.h"
#include "loader/tensor_schema.h"

namespace dsv4 {

// tests/data/tiny-dsv4/checkpoint/config.json: 7 layers + MTP, hidden 256.
ModelConfig TinyConfig();
// DeepSeek-V4-Flash (spec §1.1): 43 layers + MTP, vocab 129280, 256 experts.
ModelConfig FlashConfig();
// Small widths (hidden 128, vocab 512), the real layer kinds (window-only,
// CSA, HCA) and a 1M-token context: the long-context tests' model, whose
// 1M-token run docs/performance.md records.
ModelConfig LongContextConfig();

struct SynthOverrides {
  // num_hidden_layers; compress_ratios become the first N entries of the Flash
  // pattern 0,0,4,128,4,128,... then 0 per MTP block; num_hash_layers is capped at N.
  std::optional<int64_t> layers;
  std::optional<int64_t> experts;  // n_routed_experts; num_experts_per_tok is capped at it
  std::optional<int64_t> vocab;
  std::optional<int64_t> max_positions;
};

// Applies the overrides and validates the result like a config.json (errors
// name the field).
ModelConfig ApplyOverrides(ModelConfig config, const SynthOverrides& overrides);

// Entry `index` of the Flash compress_ratios pattern extended to any length.
int64_t FlashCompressRatio(int64_t index);

struct SynthProgress {
  uint64_t bytes_done = 0;   // bytes of the shards written so far
  uint64_t bytes_total = 0;  // bytes of all shards
  int shard = 0;             // 1-based shard being written
  int num_shards = 0;
  double seconds = 0;
};

struct SynthOptions {
  uint64_t seed = 0;
  // A tokenizer.json to copy in ("" = none); a tokenizer_config.json beside it comes along.
  std::string tokenizer;
  // Called after every chunk written; may be empty.
  std::function<void(const SynthProgress&)> progress;
  // Every weight zero (hash routing tables stay drawn, so routing stays
  // valid), left as holes in sparse shards: written in no time and taking
  // no disk space, for timing the engine on a model's shapes
  // (engine/runtime/decode_overhead.h), not for running text through.
  bool zero_weights = false;
};

// One safetensors file of the checkpoint and the tensors it holds.
struct ShardPlan {
  std::string file;  // model-0000i-of-0000n.safetensors
  std::vector<TensorSpec> tensors;
};

// The official shard layout: embed.weight alone in shard 1, one shard per main
// layer, head/norm/hc_head together, all MTP blocks in the last shard.
std::vector<ShardPlan> PlanShards(const ModelConfig& config);

// Bytes of every file SynthesizeCheckpoint writes (shards, index, config), not
// counting a copied tokenizer.
uint64_t SynthesizedBytes(const ModelConfig& config);

// Writes the checkpoint into `out_dir`, which must not exist or be empty (no
// user file is ever overwritten). The config is validated like a config.json
// and the free disk space checked before anything is written. Output is a
// function of (config, seed) only, whatever the thread count. On failure the
// files written so far are removed and dsv4::Error names the file at fault.
void SynthesizeCheckpoint(const ModelConfig& config, const SynthOptions& options, const std::string& out_dir);

}  // namespace dsv4
