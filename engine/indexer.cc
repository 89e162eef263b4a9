#include "engine/indexer.h"

#include <algorithm>
#include <cmath>

#include "engine/compressor.h"
#include "engine/vector_ops.h"
#include "simd/matmul.h"
#include "simd/number_formats.h"

namespace dsv4 {

Indexer::Indexer(const ModelConfig& config, const IndexerWeights& weights, const Rope& rope, Numerics numerics)
    : config_(config), w_(weights), rope_(rope), numerics_(numerics) {}

Indexer::Projections Indexer::Project(const float* normed_input, const float* q_lora, const int64_t* positions,
                                      int64_t rows) const {
  const int64_t heads = config_.index_n_heads, dim = config_.index_head_dim;
  const int64_t rope_dims = config_.qk_rope_head_dim;
  Projections p;
  p.query.resize(rows * heads * dim);
  MatMul(w_.wq_b, q_lora, rows, p.query.data());
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t h = 0; h < heads; ++h) {
      float* q = p.query.data() + (t * heads + h) * dim;
      rope_.Apply(q + dim - rope_dims, positions[t]);
      // The Hadamard rotation cancels in q.k; it only matters for where the
      // FP4 round trip rounds.
      if (numerics_ == Numerics::kDefault) {
        HadamardTransform(q, dim);
        Fp4RoundTrip(q, dim, 32);
      }
    }
  }
  p.weights.resize(rows * heads);
  MatMul(w_.weights_proj, normed_input, rows, p.weights.data());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dim * heads)));
  for (float& v : p.weights) v *= scale;
  p.kv.resize(rows * 2 * dim);
  p.gate.resize(rows * 2 * dim);
  MatMul(w_.compressor.wkv, normed_input, rows, p.kv.data());
  MatMul(w_.compressor.wgate, normed_input, rows, p.gate.data());
  return p;
}

std::vector<int32_t> Indexer::Select(const Projections& p, int64_t t, int64_t position, LayerState& state) const {
  const int64_t heads = config_.index_n_heads, dim = config_.index_head_dim;
  const CompressorWeights& cw = w_.compressor;
  std::vector<float> row(dim);
  if (CompressorStep(cw, state.indexer_compressor, position, p.kv.data() + t * 2 * dim,
                     p.gate.data() + t * 2 * dim, row.data())) {
    const int64_t j = position / cw.ratio;
    RmsNorm(row.data(), cw.norm.data(), dim, config_.rms_norm_eps, row.data());
    rope_.Apply(row.data() + dim - config_.qk_rope_head_dim, j * cw.ratio);
    // In default numerics the store's encoding is the FP4 round trip (§3.5).
    if (numerics_ == Numerics::kDefault) HadamardTransform(row.data(), dim);
    state.indexer_rows->Append(row.data());
  }

  const int64_t available = (position + 1) / cw.ratio;
  std::vector<float> scores(available, 0.0f);
  const float* query = p.query.data() + t * heads * dim;
  const float* weights = p.weights.data() + t * heads;
  // Rows are decoded a block at a time; each decoded row serves every head.
  constexpr int64_t kBlock = 256;
  std::vector<float> keys(std::min(available, kBlock) * dim);
  for (int64_t begin = 0; begin < available; begin += kBlock) {
    const int64_t end = std::min(available, begin + kBlock);
    state.indexer_rows->GatherRange(begin, end, keys.data());
    for (int64_t j = begin; j < end; ++j) {
      const float* key = keys.data() + (j - begin) * dim;
      float score = 0;
      for (int64_t h = 0; h < heads; ++h) score += std::max(Dot(query + h * dim, key, dim), 0.0f) * weights[h];
      scores[j] = score;
    }
  }
  return TopK(scores.data(), available, config_.index_topk);
}

}  // namespace dsv4
