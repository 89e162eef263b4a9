#include "loader/tensor_schema.h"

namespace dsv4 {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

class SchemaBuilder {
 public:
  SchemaBuilder(const ModelConfig& config, std::vector<TensorSpec>& out) : c_(config), out_(out) {}

  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape, TensorRole role) {
    out_.push_back({prefix_ + name, dtype, std::move(shape), role, block_});
  }
  void Fp8Linear(const std::string& name, int64_t out, int64_t in) {
    Add(name + ".weight", DType::kF8E4M3, {out, in}, TensorRole::kFp8Weight);
    Add(name + ".scale", DType::kF8E8M0,
        {CeilDiv(out, c_.weight_block_rows), CeilDiv(in, c_.weight_block_cols)}, TensorRole::kScale);
  }
  void Fp4Linear(const std::string& name, int64_t out, int64_t in) {
    Add(name + ".weight", DType::kI8, {out, in / 2}, TensorRole::kFp4Weight);
    Add(name + ".scale", DType::kF8E8M0, {out, in / 32}, TensorRole::kScale);
  }
  void Norm(const std::string& name, int64_t dim) {
    Add(name + ".weight", DType::kBF16, {dim}, TensorRole::kNorm);
  }
  void HyperConnection(const std::string& name, int64_t mixes, int64_t scales) {
    Add(name + "_fn", DType::kF32, {mixes, c_.hc_mult * c_.hidden_size}, TensorRole::kHcFn);
    Add(name + "_base", DType::kF32, {mixes}, TensorRole::kHcBase);
    Add(name + "_scale", DType::kF32, {scales}, TensorRole::kHcScale);
  }
  void Compressor(const std::string& name, int64_t ratio, int64_t dim) {
    int64_t coff = ratio == 4 ? 2 : 1;
    Add(name + ".ape", DType::kF32, {ratio, coff * dim}, TensorRole::kApe);
    Add(name + ".wkv.weight", DType::kBF16, {coff * dim, c_.hidden_size}, TensorRole::kBf16Weight);
    Add(name + ".wgate.weight", DType::kBF16, {coff * dim, c_.hidden_size}, TensorRole::kBf16Weight);
    Norm(name + ".norm", dim);
  }

  void TopLevel() {
    SetBlock(-1, "");
    const int64_t V = c_.vocab_size, D = c_.hidden_size;
    Add("embed.weight", DType::kBF16, {V, D}, TensorRole::kEmbedding);
    Add("head.weight", DType::kBF16, {V, D}, TensorRole::kEmbedding);
    Norm("norm", D);
    HyperConnection("hc_head", c_.hc_mult, 1);
  }

  void Block(int64_t L) {
    SetBlock(L, BlockPrefix(c_, L));
    const int64_t D = c_.hidden_size, H = c_.num_attention_heads, hd = c_.head_dim;
    const int64_t ratio = c_.CompressRatio(L);
    const bool mtp = L >= c_.num_hidden_layers;
    Norm("attn_norm", D);
    Norm("ffn_norm", D);
    HyperConnection("hc_attn", c_.MixHc(), 3);
    HyperConnection("hc_ffn", c_.MixHc(), 3);
    Add("attn.attn_sink", DType::kF32, {H}, TensorRole::kAttnSink);
    Fp8Linear("attn.wq_a", c_.q_lora_rank, D);
    Norm("attn.q_norm", c_.q_lora_rank);
    Fp8Linear("attn.wq_b", H * hd, c_.q_lora_rank);
    Fp8Linear("attn.wkv", hd, D);
    Norm("attn.kv_norm", hd);
    Fp8Linear("attn.wo_a", c_.o_groups * c_.o_lora_rank, H * hd / c_.o_groups);
    Fp8Linear("attn.wo_b", D, c_.o_groups * c_.o_lora_rank);
    if (ratio > 0) Compressor("attn.compressor", ratio, hd);
    if (ratio == 4) {
      const int64_t IH = c_.index_n_heads, IHD = c_.index_head_dim;
      Fp8Linear("attn.indexer.wq_b", IH * IHD, c_.q_lora_rank);
      Add("attn.indexer.weights_proj.weight", DType::kBF16, {IH, D}, TensorRole::kBf16Weight);
      Compressor("attn.indexer.compressor", 4, IHD);
    }
    const int64_t E = c_.n_routed_experts, I = c_.moe_intermediate_size;
    Add("ffn.gate.weight", DType::kBF16, {E, D}, TensorRole::kBf16Weight);
    if (c_.IsHashLayer(L)) {
      Add("ffn.gate.tid2eid", DType::kI64, {c_.vocab_size, c_.num_experts_per_tok}, TensorRole::kHashTable);
    } else {
      Add("ffn.gate.bias", DType::kF32, {E}, TensorRole::kRouterBias);
    }
    for (int64_t e = 0; e < E; ++e) {
      const std::string expert = "ffn.experts." + std::to_string(e);
      Fp4Linear(expert + ".w1", I, D);
      Fp4Linear(expert + ".w3", I, D);
      Fp4Linear(expert + ".w2", D, I);
    }
    if (c_.n_shared_experts > 0) {
      const int64_t S = c_.n_shared_experts * I;
      Fp8Linear("ffn.shared_experts.w1", S, D);
      Fp8Linear("ffn.shared_experts.w3", S, D);
      Fp8Linear("ffn.shared_experts.w2", D, S);
    }
    if (mtp) {
      Fp8Linear("e_proj", D, D);
      Fp8Linear("h_proj", D, D);
      Norm("enorm", D);
      Norm("hnorm", D);
      Norm("norm", D);
      HyperConnection("hc_head", c_.hc_mult, 1);
    }
  }

 private:
  void SetBlock(int64_t block, std::string prefix) {
    block_ = block;
    prefix_ = std::move(prefix);
  }

  const ModelConfig& c_;
  std::vector<TensorSpec>& out_;
  std::string prefix_;
  int64_t block_ = -1;
};

}  // namespace

std::string BlockPrefix(const ModelConfig& config, int64_t block) {
  if (block < config.num_hidden_layers) return "layers." + std::to_string(block) + ".";
  return "mtp." + std::to_string(block - config.num_hidden_layers) + ".";
}

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config) {
  std::vector<TensorSpec> specs;
  SchemaBuilder builder(config, specs);
  builder.TopLevel();
  for (int64_t L = 0; L < config.NumBlocks(); ++L) builder.Block(L);
  return specs;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace dsv4
