#include "loader/config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

// A value in an error message: a list or object by its kind only (dump()
// recurses once per level, and a config nested 100,000 deep would overflow
// the stack).
std::string Shown(const Json& v) { return v.is_array() ? "a list" : v.is_object() ? "an object" : v.dump(); }

class FieldReader {
 public:
  FieldReader(const Json& json, const std::string& source) : json_(json), source_(source) {}

  [[noreturn]] void Fail(const std::string& field, const std::string& why) const {
    throw Error(source_ + ": field \"" + field + "\" " + why);
  }

  const Json* Find(const std::string& field) const {
    auto it = json_.find(field);
    return it == json_.end() || it->is_null() ? nullptr : &*it;
  }

  // Bounds keep every product of dimensions (tensor sizes) far from int64 overflow.
  int64_t Int(const std::string& field, int64_t min_value, int64_t max_value = kMaxDim) const {
    const Json* v = Find(field);
    if (!v) Fail(field, "is missing");
    return CheckedInt(*v, field, min_value, max_value);
  }
  int64_t IntOr(const std::string& field, int64_t fallback, int64_t min_value, int64_t max_value = kMaxDim) const {
    const Json* v = Find(field);
    return v ? CheckedInt(*v, field, min_value, max_value) : fallback;
  }
  double Real(const std::string& field, bool positive) const {
    const Json* v = Find(field);
    if (!v) Fail(field, "is missing");
    return CheckedReal(*v, field, positive);
  }
  double RealOr(const std::string& field, double fallback, bool positive) const {
    const Json* v = Find(field);
    return v ? CheckedReal(*v, field, positive) : fallback;
  }
  bool BoolOr(const std::string& field, bool fallback) const {
    const Json* v = Find(field);
    if (!v) return fallback;
    if (!v->is_boolean()) Fail(field, "must be true or false");
    return v->get<bool>();
  }
  std::string String(const std::string& field) const {
    const Json* v = Find(field);
    if (!v) Fail(field, "is missing");
    if (!v->is_string()) Fail(field, "must be a string");
    return v->get<std::string>();
  }

  static constexpr int64_t kMaxDim = int64_t{1} << 20;
  static constexpr int64_t kMaxCount = int64_t{1} << 40;  // vocabulary, positions

  int64_t CheckedInt(const Json& v, const std::string& field, int64_t min_value, int64_t max_value = kMaxDim) const {
    int64_t value = 0;
    if (v.is_number_integer()) {
      value = v.get<int64_t>();
    } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
               std::fabs(v.get<double>()) < 9e15) {
      value = static_cast<int64_t>(v.get<double>());
    } else {
      Fail(field, "must be an integer, got " + Shown(v));
    }
    if (value < min_value) Fail(field, "must be >= " + std::to_string(min_value) + ", got " + v.dump());
    if (value > max_value) Fail(field, "must be <= " + std::to_string(max_value) + ", got " + v.dump());
    return value;
  }
  double CheckedReal(const Json& v, const std::string& field, bool positive) const {
    if (!v.is_number()) Fail(field, "must be a number, got " + Shown(v));
    double value = v.get<double>();
    if (!std::isfinite(value) || (positive && value <= 0)) {
      Fail(field, std::string("must be a finite") + (positive ? " positive" : "") + " number, got " + v.dump());
    }
    return value;
  }

 private:
  const Json& json_;
  const std::string& source_;
};

bool IsPowerOfTwo(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

ModelConfig ModelConfig::FromJson(const Json& json, const std::string& source) {
  if (!json.is_object()) throw Error(source + ": config must be a JSON object");
  FieldReader r(json, source);
  ModelConfig c;
  c.vocab_size = r.Int("vocab_size", 2, FieldReader::kMaxCount);
  c.hidden_size = r.Int("hidden_size", 1);
  c.num_hidden_layers = r.Int("num_hidden_layers", 1, 1 << 12);
  c.num_nextn_predict_layers = r.IntOr("num_nextn_predict_layers", 0, 0, 16);
  c.num_attention_heads = r.Int("num_attention_heads", 1);
  c.num_key_value_heads = r.IntOr("num_key_value_heads", 1, 1);
  c.head_dim = r.Int("head_dim", 1);
  c.qk_rope_head_dim = r.Int("qk_rope_head_dim", 2);
  c.q_lora_rank = r.Int("q_lora_rank", 1);
  c.o_groups = r.Int("o_groups", 1);
  c.o_lora_rank = r.Int("o_lora_rank", 1);
  c.sliding_window = r.Int("sliding_window", 1);
  c.rope_theta = r.Real("rope_theta", true);
  c.compress_rope_theta = r.Real("compress_rope_theta", true);
  c.max_position_embeddings = r.Int("max_position_embeddings", 1, FieldReader::kMaxCount);
  c.index_n_heads = r.Int("index_n_heads", 1);
  c.index_head_dim = r.Int("index_head_dim", 1);
  c.index_topk = r.Int("index_topk", 1);
  c.n_routed_experts = r.Int("n_routed_experts", 1, 1 << 16);
  c.n_shared_experts = r.IntOr("n_shared_experts", 1, 0);
  c.num_experts_per_tok = r.Int("num_experts_per_tok", 1);
  c.moe_intermediate_size = r.Int("moe_intermediate_size", 1);
  c.num_hash_layers = r.Int("num_hash_layers", 0);
  c.scoring_func = r.String("scoring_func");
  c.norm_topk_prob = r.BoolOr("norm_topk_prob", true);
  c.routed_scaling_factor = r.Real("routed_scaling_factor", true);
  c.swiglu_limit = r.RealOr("swiglu_limit", 0.0, false);
  c.hc_mult = r.Int("hc_mult", 1, 64);
  c.hc_sinkhorn_iters = r.Int("hc_sinkhorn_iters", 1, 1 << 16);
  c.hc_eps = r.Real("hc_eps", false);
  c.rms_norm_eps = r.Real("rms_norm_eps", true);
  c.bos_token_id = r.IntOr("bos_token_id", 0, 0, FieldReader::kMaxCount);
  c.eos_token_id = r.IntOr("eos_token_id", 1, 0, FieldReader::kMaxCount);
  c.tie_word_embeddings = r.BoolOr("tie_word_embeddings", false);
  if (const Json* e = r.Find("expert_dtype")) {
    if (!e->is_string()) r.Fail("expert_dtype", "must be a string");
    c.expert_dtype = e->get<std::string>();
  }

  if (const Json* q = r.Find("quantization_config")) {
    if (!q->is_object()) r.Fail("quantization_config", "must be an object");
    auto block = q->find("weight_block_size");
    if (block != q->end()) {
      if (!block->is_array() || block->size() != 2) {
        r.Fail("quantization_config.weight_block_size", "must be a list of two integers");
      }
      c.weight_block_rows = r.CheckedInt((*block)[0], "quantization_config.weight_block_size", 1);
      c.weight_block_cols = r.CheckedInt((*block)[1], "quantization_config.weight_block_size", 1);
    }
  }

  if (const Json* rs = r.Find("rope_scaling")) {
    if (!rs->is_object()) r.Fail("rope_scaling", "must be an object or null");
    FieldReader s(*rs, source);
    std::string type = rs->contains("type") ? s.String("type") : s.String("rope_type");
    if (type == "yarn") {
      c.rope_scaling.yarn = true;
      c.rope_scaling.factor = s.Real("factor", true);
      c.rope_scaling.original_max_position_embeddings = s.Int("original_max_position_embeddings", 1);
      c.rope_scaling.beta_fast = s.RealOr("beta_fast", 32.0, true);
      c.rope_scaling.beta_slow = s.RealOr("beta_slow", 1.0, true);
    } else if (type != "default" && type != "none") {
      r.Fail("rope_scaling.type", "\"" + type + "\" is not supported (yarn or none)");
    }
  }

  const Json* ratios = r.Find("compress_ratios");
  if (!ratios) r.Fail("compress_ratios", "is missing");
  if (!ratios->is_array()) r.Fail("compress_ratios", "must be a list");
  for (const Json& v : *ratios) c.compress_ratios.push_back(r.CheckedInt(v, "compress_ratios", 0));

  // Cross-field checks: each names the fields that disagree.
  auto require = [&](bool ok, const std::string& field, const std::string& why) {
    if (!ok) r.Fail(field, why);
  };
  require(static_cast<int64_t>(c.compress_ratios.size()) >= c.NumBlocks(), "compress_ratios",
          "has " + std::to_string(c.compress_ratios.size()) + " entries; num_hidden_layers + "
          "num_nextn_predict_layers = " + std::to_string(c.NumBlocks()) + " are needed");
  c.compress_ratios.resize(c.NumBlocks());
  for (int64_t L = 0; L < c.NumBlocks(); ++L) {
    int64_t ratio = c.compress_ratios[L];
    require(ratio == 0 || ratio >= 2, "compress_ratios",
            "entry " + std::to_string(L) + " is " + std::to_string(ratio) + " (must be 0 or >= 2)");
    require(L < c.num_hidden_layers || ratio == 0, "compress_ratios",
            "entry " + std::to_string(L) + " (an MTP block) must be 0");
  }
  require(c.num_key_value_heads == 1, "num_key_value_heads", "must be 1 (DeepSeek-V4 shares one K=V head)");
  require(c.scoring_func == "sqrtsoftplus", "scoring_func",
          "\"" + c.scoring_func + "\" is not supported (sqrtsoftplus)");
  require(c.expert_dtype == "fp4", "expert_dtype", "\"" + c.expert_dtype + "\" is not supported (fp4)");
  require(c.qk_rope_head_dim % 2 == 0 && c.qk_rope_head_dim < c.head_dim, "qk_rope_head_dim",
          "must be even and smaller than head_dim");
  require(c.NopeHeadDim() % 64 == 0, "head_dim",
          "minus qk_rope_head_dim must be a multiple of 64 (FP8 KV blocks)");
  require(c.num_attention_heads % c.o_groups == 0, "o_groups", "must divide num_attention_heads");
  require(IsPowerOfTwo(c.index_head_dim) && c.index_head_dim % 32 == 0 &&
              c.index_head_dim > c.qk_rope_head_dim,
          "index_head_dim", "must be a power of two >= 32 and larger than qk_rope_head_dim");
  require(c.num_experts_per_tok <= c.n_routed_experts, "num_experts_per_tok",
          "must not exceed n_routed_experts");
  require(c.hidden_size % 32 == 0, "hidden_size", "must be a multiple of 32 (FP4 scale groups)");
  require(c.moe_intermediate_size % 32 == 0, "moe_intermediate_size",
          "must be a multiple of 32 (FP4 scale groups)");
  // The tensor schema lists ~6 tensors per routed expert per block; bounded here so that
  // a small config.json cannot make it (and Checkpoint, inspect) take ~100 GB.
  constexpr int64_t kMaxRoutedExpertsInAllBlocks = int64_t{1} << 18;  // 23x DeepSeek-V4-Flash's 11,264
  require(c.NumBlocks() * c.n_routed_experts <= kMaxRoutedExpertsInAllBlocks, "n_routed_experts",
          "times num_hidden_layers + num_nextn_predict_layers must be <= " +
              std::to_string(kMaxRoutedExpertsInAllBlocks) + " (the tensor list would not fit in memory)");
  require(c.num_hash_layers <= c.num_hidden_layers, "num_hash_layers", "must not exceed num_hidden_layers");
  require(c.bos_token_id < c.vocab_size, "bos_token_id", "must be < vocab_size");
  require(c.eos_token_id < c.vocab_size, "eos_token_id", "must be < vocab_size");
  require(!c.tie_word_embeddings, "tie_word_embeddings", "must be false (separate embed and head)");
  return c;
}

ModelConfig ModelConfig::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open config");
  std::stringstream text;
  text << in.rdbuf();
  Json json = Json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) throw Error(path + ": not valid JSON");
  return FromJson(json, path);
}

Json ModelConfig::ToJson() const {
  Json j;
  j["architectures"] = {"DeepseekV4ForCausalLM"};
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  j["expert_dtype"] = expert_dtype;
  j["hc_eps"] = hc_eps;
  j["hc_mult"] = hc_mult;
  j["hc_sinkhorn_iters"] = hc_sinkhorn_iters;
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["index_head_dim"] = index_head_dim;
  j["index_n_heads"] = index_n_heads;
  j["index_topk"] = index_topk;
  j["initializer_range"] = 0.02;
  j["max_position_embeddings"] = max_position_embeddings;
  j["model_type"] = "deepseek_v4";
  j["moe_intermediate_size"] = moe_intermediate_size;
  j["n_routed_experts"] = n_routed_experts;
  j["n_shared_experts"] = n_shared_experts;
  j["norm_topk_prob"] = norm_topk_prob;
  j["num_attention_heads"] = num_attention_heads;
  j["num_experts_per_tok"] = num_experts_per_tok;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_hash_layers"] = num_hash_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["num_nextn_predict_layers"] = num_nextn_predict_layers;
  j["o_groups"] = o_groups;
  j["o_lora_rank"] = o_lora_rank;
  j["q_lora_rank"] = q_lora_rank;
  j["qk_rope_head_dim"] = qk_rope_head_dim;
  j["quantization_config"] = {{"activation_scheme", "dynamic"},
                              {"fmt", "e4m3"},
                              {"quant_method", "fp8"},
                              {"scale_fmt", "ue8m0"},
                              {"weight_block_size", {weight_block_rows, weight_block_cols}}};
  j["rms_norm_eps"] = rms_norm_eps;
  if (rope_scaling.yarn) {
    j["rope_scaling"] = {{"beta_fast", rope_scaling.beta_fast},
                         {"beta_slow", rope_scaling.beta_slow},
                         {"factor", rope_scaling.factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings},
                         {"type", "yarn"}};
  } else {
    j["rope_scaling"] = nullptr;
  }
  j["rope_theta"] = rope_theta;
  j["routed_scaling_factor"] = routed_scaling_factor;
  j["scoring_func"] = scoring_func;
  j["sliding_window"] = sliding_window;
  j["swiglu_limit"] = swiglu_limit;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["topk_method"] = "noaux_tc";
  j["torch_dtype"] = "bfloat16";
  j["transformers_version"] = "4.57.1";
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  j["compress_rope_theta"] = compress_rope_theta;
  j["compress_ratios"] = compress_ratios;
  return j;
}

}  // namespace dsv4
