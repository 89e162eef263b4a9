#include "engine/indexer.h"

#include <algorithm>
#include <cmath>

#include "engine/compressor.h"
#include "engine/vector_ops.h"
#include "simd/matmul.h"
#include "simd/number_formats.h"
#include "simd/ops.h"

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

void Indexer::AdvanceRows(const Projections& p, int64_t t, int64_t position, LayerState& state) const {
  const int64_t dim = config_.index_head_dim;
  const CompressorWeights& cw = w_.compressor;
  std::vector<float> row(dim);
  if (!CompressorStep(cw, state.indexer_compressor, position, p.kv.data() + t * 2 * dim,
                      p.gate.data() + t * 2 * dim, row.data())) {
    return;
  }
  const int64_t j = position / cw.ratio;
  RmsNorm(row.data(), cw.norm.data(), dim, config_.rms_norm_eps, row.data());
  rope_.Apply(row.data() + dim - config_.qk_rope_head_dim, j * cw.ratio);
  // In default numerics the store's encoding is the FP4 round trip (§3.5).
  if (numerics_ == Numerics::kDefault) HadamardTransform(row.data(), dim);
  state.indexer_rows->Append(row.data());
}

std::vector<std::vector<int32_t>> Indexer::Select(const Projections& p, const std::vector<int64_t>& rows,
                                                  const std::vector<int64_t>& positions,
                                                  const LayerState& state) const {
  const int64_t heads = config_.index_n_heads, dim = config_.index_head_dim;
  const int64_t ratio = w_.compressor.ratio;
  std::vector<std::vector<int32_t>> selected(rows.size());
  // Scores of a group of queries against all rows are one MatMul:
  // dots[query][head][row]; groups are sized to bound that buffer.
  constexpr int64_t kMaxDots = int64_t{8} << 20;
  std::vector<float> dots, scores;
  for (size_t begin = 0; begin < rows.size();) {
    const int64_t max_available = (positions[rows.back()] + 1) / ratio;
    const size_t group = std::clamp<int64_t>(kMaxDots / std::max<int64_t>(1, heads * max_available), 1,
                                             rows.size() - begin);
    const int64_t available = (positions[rows[begin + group - 1]] + 1) / ratio;
    if (available > 0) {
      std::vector<float> queries(group * heads * dim);
      for (size_t i = 0; i < group; ++i) {
        const float* q = p.query.data() + rows[begin + i] * heads * dim;
        std::copy(q, q + heads * dim, queries.begin() + i * heads * dim);
      }
      dots.resize(group * heads * available);
      MatMul(state.indexer_rows->View(available), queries.data(), group * heads, dots.data());
      for (size_t i = 0; i < group; ++i) {
        const int64_t t = rows[begin + i];
        const int64_t visible = (positions[t] + 1) / ratio;
        const float* weights = p.weights.data() + t * heads;
        scores.assign(visible, 0.0f);
        for (int64_t h = 0; h < heads; ++h) {
          const float* d = dots.data() + (i * heads + h) * available;
          for (int64_t j = 0; j < visible; ++j) scores[j] += std::max(d[j], 0.0f) * weights[h];
        }
        selected[begin + i] = ops::TopK(scores.data(), visible, config_.index_topk);
      }
    }
    begin += group;
  }
  return selected;
}

}  // namespace dsv4
