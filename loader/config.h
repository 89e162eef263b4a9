// The model's hyperparameters, read from the Hugging Face config.json. Every
// constant of the forward pass comes from here (spec §1.6); nothing about
// DeepSeek-V4-Flash is hard-coded elsewhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

struct RopeScaling {
  bool yarn = false;  // rope_scaling present with type "yarn"
  double factor = 1.0;
  int64_t original_max_position_embeddings = 0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_nextn_predict_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 1;
  int64_t head_dim = 0;
  int64_t qk_rope_head_dim = 0;
  int64_t q_lora_rank = 0;
  int64_t o_groups = 0;
  int64_t o_lora_rank = 0;
  int64_t sliding_window = 0;
  // One entry per main layer followed by one per MTP block: 0 = window only,
  // 4 = CSA (overlapping compressor + indexer), anything else > 1 = HCA.
  std::vector<int64_t> compress_ratios;
  double rope_theta = 0.0;
  double compress_rope_theta = 0.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 0;
  int64_t index_n_heads = 0;
  int64_t index_head_dim = 0;
  int64_t index_topk = 0;
  int64_t n_routed_experts = 0;
  int64_t n_shared_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t num_hash_layers = 0;
  std::string scoring_func;
  bool norm_topk_prob = true;
  double routed_scaling_factor = 1.0;
  double swiglu_limit = 0.0;  // 0 disables the clamp
  int64_t hc_mult = 0;
  int64_t hc_sinkhorn_iters = 0;
  double hc_eps = 0.0;
  double rms_norm_eps = 0.0;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 1;
  bool tie_word_embeddings = false;
  int64_t weight_block_rows = 128;  // quantization_config.weight_block_size
  int64_t weight_block_cols = 128;
  std::string expert_dtype = "fp4";

  // Parses and validates; `source` (a file name) prefixes every error.
  static ModelConfig FromJson(const nlohmann::ordered_json& json, const std::string& source);
  static ModelConfig FromFile(const std::string& path);
  // The official key set, in the official order, as config.json holds it.
  nlohmann::ordered_json ToJson() const;

  // Layer index runs over main layers then MTP blocks (num_hidden_layers + k).
  int64_t NumBlocks() const { return num_hidden_layers + num_nextn_predict_layers; }
  int64_t CompressRatio(int64_t layer) const { return compress_ratios.at(layer); }
  bool IsCsaLayer(int64_t layer) const { return CompressRatio(layer) == 4; }
  bool IsHashLayer(int64_t layer) const {
    return layer < num_hidden_layers && layer < num_hash_layers;
  }
  int64_t NopeHeadDim() const { return head_dim - qk_rope_head_dim; }
  int64_t MixHc() const { return (2 + hc_mult) * hc_mult; }
};

}  // namespace dsv4
