// Views of one checkpoint's tensors, grouped the way the forward pass uses
// them. Large matrices stay in the mapped files in their stored encoding;
// only small vectors (norms, biases, hyper-connection parameters) are
// decoded into f32 copies.
#pragma once

#include <cstdint>
#include <vector>

#include "loader/checkpoint.h"
#include "simd/weight_matrix.h"

namespace dsv4 {

struct HyperConnectionWeights {
  WeightMatrix fn;          // F32 [mixes][hc_mult * hidden]
  std::vector<float> base;  // [mixes]
  std::vector<float> scale; // [3] (pre, post, comb), or [1] for a head
};

struct CompressorWeights {
  int64_t ratio = 0;
  int64_t dim = 0;        // output row width d
  bool overlap = false;   // ratio 4: two half-windows, coff = 2
  WeightMatrix wkv, wgate;  // BF16 [coff*d][hidden]
  std::vector<float> ape;   // [ratio][coff*d]
  std::vector<float> norm;  // [d]
};

struct IndexerWeights {
  WeightMatrix wq_b;          // FP8 [heads*dim][q_lora]
  WeightMatrix weights_proj;  // BF16 [heads][hidden]
  CompressorWeights compressor;
};

struct AttentionWeights {
  WeightMatrix wq_a, wq_b, wkv, wo_a, wo_b;
  std::vector<float> q_norm, kv_norm, sink;
  bool compressed = false;
  CompressorWeights compressor;
  bool has_indexer = false;
  IndexerWeights indexer;
};

struct ExpertWeights {
  WeightMatrix w1, w3, w2;  // gate, up, down
};

struct MoeWeights {
  WeightMatrix gate;             // BF16 [experts][hidden]
  std::vector<float> bias;       // [experts], score-routed layers
  const uint8_t* tid2eid = nullptr;  // I64 [vocab][top_k], hash-routed layers
  std::vector<ExpertWeights> experts;
  bool has_shared = false;
  ExpertWeights shared;
};

// The extra parts of a multi-token-prediction block.
struct MtpWeights {
  WeightMatrix e_proj, h_proj;
  std::vector<float> enorm, hnorm, norm;
  HyperConnectionWeights hc_head;
};

struct BlockWeights {
  std::vector<float> attn_norm, ffn_norm;
  HyperConnectionWeights hc_attn, hc_ffn;
  AttentionWeights attn;
  MoeWeights moe;
  MtpWeights mtp;  // MTP blocks only
};

struct ModelWeights {
  WeightMatrix embed, head;  // BF16 [vocab][hidden]
  std::vector<float> norm;
  HyperConnectionWeights hc_head;
  std::vector<BlockWeights> blocks;  // main layers, then MTP blocks

  explicit ModelWeights(const Checkpoint& checkpoint);
};

}  // namespace dsv4
