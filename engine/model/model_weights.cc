#include "engine/model/model_weights.h"

#include <cstring>

#include "simd/number_formats.h"

namespace dsv4 {
namespace {

class Binder {
 public:
  explicit Binder(const Checkpoint& checkpoint) : ckpt_(checkpoint), config_(checkpoint.config()) {}

  WeightMatrix Fp8(const std::string& name) const {
    const TensorView& w = ckpt_.Get(name + ".weight");
    WeightMatrix m{WeightFormat::kE4M3Blocked, w.Dim(0), w.Dim(1), w.data, ckpt_.Get(name + ".scale").data,
                   config_.weight_block_rows, config_.weight_block_cols};
    return m;
  }
  WeightMatrix Fp4(const std::string& name) const {
    const TensorView& w = ckpt_.Get(name + ".weight");
    return WeightMatrix{WeightFormat::kE2M1Grouped, w.Dim(0), w.Dim(1) * 2, w.data,
                        ckpt_.Get(name + ".scale").data, 1, 32};
  }
  WeightMatrix Matrix(const std::string& name) const {
    const TensorView& w = ckpt_.Get(name);
    const WeightFormat format = w.dtype == DType::kBF16 ? WeightFormat::kBF16 : WeightFormat::kF32;
    return WeightMatrix{format, w.Dim(0), w.Dim(1), w.data, nullptr, 1, 1};
  }
  // Any BF16 or F32 tensor, decoded to f32.
  std::vector<float> Vector(const std::string& name) const {
    const TensorView& v = ckpt_.Get(name);
    std::vector<float> out(v.NumElements());
    if (v.dtype == DType::kF32) {
      std::memcpy(out.data(), v.data, out.size() * 4);
    } else {
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t bits;
        std::memcpy(&bits, v.data + 2 * i, 2);
        out[i] = Bf16ToF32(bits);
      }
    }
    return out;
  }
  HyperConnectionWeights HyperConnection(const std::string& name) const {
    return {Matrix(name + "_fn"), Vector(name + "_base"), Vector(name + "_scale")};
  }
  CompressorWeights Compressor(const std::string& name, int64_t ratio, int64_t dim) const {
    CompressorWeights c;
    c.ratio = ratio;
    c.dim = dim;
    c.overlap = ratio == 4;
    c.wkv = Matrix(name + ".wkv.weight");
    c.wgate = Matrix(name + ".wgate.weight");
    c.ape = Vector(name + ".ape");
    c.norm = Vector(name + ".norm.weight");
    return c;
  }
  ExpertWeights Fp4Expert(const std::string& name) const {
    return {Fp4(name + ".w1"), Fp4(name + ".w3"), Fp4(name + ".w2")};
  }
  ExpertWeights Fp8Expert(const std::string& name) const {
    return {Fp8(name + ".w1"), Fp8(name + ".w3"), Fp8(name + ".w2")};
  }

  BlockWeights Block(int64_t L) const {
    const std::string p = BlockPrefix(config_, L);
    BlockWeights b;
    b.attn_norm = Vector(p + "attn_norm.weight");
    b.ffn_norm = Vector(p + "ffn_norm.weight");
    b.hc_attn = HyperConnection(p + "hc_attn");
    b.hc_ffn = HyperConnection(p + "hc_ffn");

    AttentionWeights& a = b.attn;
    a.wq_a = Fp8(p + "attn.wq_a");
    a.wq_b = Fp8(p + "attn.wq_b");
    a.wkv = Fp8(p + "attn.wkv");
    a.wo_a = Fp8(p + "attn.wo_a");
    a.wo_b = Fp8(p + "attn.wo_b");
    a.q_norm = Vector(p + "attn.q_norm.weight");
    a.kv_norm = Vector(p + "attn.kv_norm.weight");
    a.sink = Vector(p + "attn.attn_sink");
    const int64_t ratio = config_.CompressRatio(L);
    if (ratio > 0) {
      a.compressed = true;
      a.compressor = Compressor(p + "attn.compressor", ratio, config_.head_dim);
    }
    if (ratio == 4) {
      a.has_indexer = true;
      a.indexer.wq_b = Fp8(p + "attn.indexer.wq_b");
      a.indexer.weights_proj = Matrix(p + "attn.indexer.weights_proj.weight");
      a.indexer.compressor = Compressor(p + "attn.indexer.compressor", 4, config_.index_head_dim);
    }

    MoeWeights& m = b.moe;
    m.gate = Matrix(p + "ffn.gate.weight");
    if (config_.IsHashLayer(L)) {
      m.tid2eid = ckpt_.Get(p + "ffn.gate.tid2eid").data;
    } else {
      m.bias = Vector(p + "ffn.gate.bias");
    }
    for (int64_t e = 0; e < config_.n_routed_experts; ++e) {
      m.experts.push_back(Fp4Expert(p + "ffn.experts." + std::to_string(e)));
    }
    m.has_shared = config_.n_shared_experts > 0;
    if (m.has_shared) m.shared = Fp8Expert(p + "ffn.shared_experts");

    if (L >= config_.num_hidden_layers) {
      b.mtp.e_proj = Fp8(p + "e_proj");
      b.mtp.h_proj = Fp8(p + "h_proj");
      b.mtp.enorm = Vector(p + "enorm.weight");
      b.mtp.hnorm = Vector(p + "hnorm.weight");
      b.mtp.norm = Vector(p + "norm.weight");
      b.mtp.hc_head = HyperConnection(p + "hc_head");
    }
    return b;
  }

 private:
  const Checkpoint& ckpt_;
  const ModelConfig& config_;
};

}  // namespace

ModelWeights::ModelWeights(const Checkpoint& checkpoint) {
  Binder bind(checkpoint);
  embed = bind.Matrix("embed.weight");
  head = bind.Matrix("head.weight");
  norm = bind.Vector("norm.weight");
  hc_head = bind.HyperConnection("hc_head");
  for (int64_t L = 0; L < checkpoint.config().NumBlocks(); ++L) blocks.push_back(bind.Block(L));
}

}  // namespace dsv4
