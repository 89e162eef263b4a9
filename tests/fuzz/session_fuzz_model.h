// The model shape the session harness loads sessions into: a valid config
// scaled down so that a session file is ~15 KB (every layer kind: CSA ratio
// 4 with its indexer, HCA ratio 2, window only, and an MTP block). Its
// identity is a constant: LoadSession only compares it. Shared by the
// harness and the seed writer (session_seeds_main.cc).
#pragma once

#include <cstdint>

#include "loader/config.h"

namespace dsv4::fuzz {

inline constexpr uint64_t kSessionModelIdentity = 0x5E5510F022ull;

inline const ModelConfig& SessionModelConfig() {
  static const ModelConfig config = ModelConfig::FromJson(nlohmann::ordered_json::parse(R"({
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 3, "num_nextn_predict_layers": 1,
    "num_attention_heads": 2, "head_dim": 66, "qk_rope_head_dim": 2, "q_lora_rank": 32,
    "o_groups": 1, "o_lora_rank": 32, "sliding_window": 2, "rope_theta": 10000.0,
    "compress_rope_theta": 160000.0, "max_position_embeddings": 64, "index_n_heads": 2,
    "index_head_dim": 32, "index_topk": 2, "n_routed_experts": 2, "num_experts_per_tok": 1,
    "moe_intermediate_size": 32, "num_hash_layers": 1, "scoring_func": "sqrtsoftplus",
    "routed_scaling_factor": 1.5, "hc_mult": 2, "hc_sinkhorn_iters": 2, "hc_eps": 1e-6,
    "rms_norm_eps": 1e-6, "compress_ratios": [4, 2, 0, 0]
  })"), "session fuzz model");
  return config;
}

}  // namespace dsv4::fuzz
