// The complete tensor list of an official DeepSeek-V4 checkpoint for a given
// config (spec §2.2): names, dtypes and shapes. The loader checks checkpoints
// against it and the synthetic writer produces exactly it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "loader/config.h"
#include "loader/dtype.h"

namespace dsv4 {

enum class TensorRole {
  kNorm,          // RMSNorm weight (BF16)
  kEmbedding,     // embed.weight / head.weight (BF16)
  kFp8Weight,     // F8_E4M3 linear weight with a block-scale companion
  kFp4Weight,     // I8 packed E2M1 routed-expert weight with a per-32 scale companion
  kScale,         // F8_E8M0 scale of the preceding weight
  kBf16Weight,    // BF16 linear weight (router, compressors, weights_proj)
  kHcFn,          // F32 hyper-connection mixing matrix
  kHcBase,        // F32 hyper-connection bias
  kHcScale,       // F32 hyper-connection scales
  kAttnSink,      // F32 per-head sink logits
  kApe,           // F32 compressor positional bias
  kRouterBias,    // F32 gate.bias
  kHashTable,     // I64 tid2eid
};

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  TensorRole role;
  int64_t block = 0;  // the layer or MTP block index it belongs to, -1 for top level
};

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config);

// "layers.L." for main layers, "mtp.K." for MTP blocks (L = num_hidden_layers + K).
std::string BlockPrefix(const ModelConfig& config, int64_t block);

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace dsv4
