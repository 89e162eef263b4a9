// What `dsv4 inspect` reports about a checkpoint or a bare config: the layer
// schedule, tensors and bytes by dtype, the weight bytes one decoded token
// reads, the KV cache footprint in the reference and the exact-compact layout,
// and problems found in the files.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loader/checkpoint.h"
#include "loader/config.h"

namespace dsv4 {

struct LayerSummary {
  std::string name;  // "layers.3", "mtp.0"
  int64_t compress_ratio = 0;
  std::string attention;  // "window", "CSA" (ratio 4) or "HCA" (other ratios)
  std::string routing;    // "hash" (tid2eid) or "score" (sqrtsoftplus + bias top-k)
  double rope_theta = 0;
  bool yarn = false;
};

struct DTypeUsage {
  int64_t tensors = 0;
  uint64_t bytes = 0;
};

// Weight bytes read to decode one token with the weights in their stored
// encoding: every dense tensor of every main layer, the top-k routed experts
// per layer, one tid2eid row on hash layers, one embedding row, the whole head.
struct DecodeRead {
  uint64_t dense = 0;           // attention, compressors, indexer, norms, hc, router, shared experts, final norm/hc_head
  uint64_t routed_experts = 0;  // num_experts_per_tok experts per main layer
  uint64_t embedding_row = 0;
  uint64_t head = 0;
  uint64_t total = 0;
  uint64_t mtp_step = 0;  // one more step through every MTP block (its experts, its own head pass)
};

// KV cache of one sequence. Per token is the growing part (compressed rows and
// indexer rows, amortised over the ratio); fixed is what does not grow with
// the context: each block's window ring and the compressor states (f32).
struct KvFootprint {
  int64_t row_bytes = 0;          // one compressed KV row (also one window row)
  int64_t indexer_row_bytes = 0;  // one indexer row (CSA layers)
  double bytes_per_token = 0;
  uint64_t fixed_bytes = 0;
  uint64_t bytes_at_max_context = 0;  // max_position_embeddings tokens, fixed part included
};

struct ModelSummary {
  std::string source;
  bool from_checkpoint = false;
  ModelConfig config;
  std::vector<LayerSummary> layers;
  std::map<std::string, DTypeUsage> by_dtype;  // safetensors dtype string -> usage
  int64_t tensor_count = 0;
  uint64_t weight_bytes = 0;
  uint64_t parameters = 0;         // logical weights (two per FP4 byte), scales excluded
  uint64_t mtp_parameters = 0;     // the part of `parameters` in MTP blocks
  uint64_t active_parameters = 0;  // per decoded token, counted as DecodeRead counts bytes
  DecodeRead decode;
  // Reference layout (spec §5.2): bf16 rows of head_dim and index_head_dim.
  KvFootprint kv_reference;
  // Exact-compact layout: E4M3 codes plus one E8M0 scale per 64 of the non-RoPE
  // dims and f32 RoPE dims; indexer rows as E2M1 codes plus one scale per 32.
  // It holds exactly what the FP8/FP4 round trips leave (spec §3.4-3.5).
  KvFootprint kv_compact;
  std::vector<std::string> problems;
};

// From the config alone: the tensors are those of the schema.
ModelSummary SummarizeConfig(const ModelConfig& config, const std::string& source);
// From an opened checkpoint: tensors as found in the files, plus problems
// (unexpected tensors, index inconsistencies, out-of-range tid2eid entries,
// non-finite F32 parameters).
ModelSummary SummarizeCheckpoint(const Checkpoint& checkpoint);

nlohmann::ordered_json SummaryToJson(const ModelSummary& summary);
std::string SummaryToText(const ModelSummary& summary);

}  // namespace dsv4
