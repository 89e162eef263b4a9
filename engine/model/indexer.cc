#include "engine/model/indexer.h"

#include <algorithm>
#include <cmath>

#include "engine/model/compressor.h"
#include "engine/kv/kv_codec.h"
#include "simd/indexer_scores.h"
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
    const Rope::Angles angles = rope_.AnglesAt(positions[t]);
    for (int64_t h = 0; h < heads; ++h) rope_.Apply(p.query.data() + (t * heads + h) * dim + dim - rope_dims, angles);
  }
  if (HasRoundTrips(numerics_)) {
    // The FP4 round trip (§3.5) as codes, which the exact score kernel
    // takes. The Hadamard rotation cancels in q.k; it only matters for where
    // the round trip rounds.
    p.query_codes.resize(rows * heads * dim / 2);
    p.query_scales.resize(rows * heads * dim / kFp4Block);
    for (int64_t i = 0; i < rows * heads; ++i) {
      float* q = p.query.data() + i * dim;
      ops::Hadamard(q, dim);
      Fp4Encode(q, dim, kFp4Block, p.query_codes.data() + i * dim / 2,
                p.query_scales.data() + i * dim / kFp4Block);
    }
    p.query.clear();
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
  ops::RmsNorm(row.data(), cw.norm.data(), dim, config_.rms_norm_eps, row.data());
  rope_.Apply(row.data() + dim - config_.qk_rope_head_dim, j * cw.ratio);
  // In default numerics the store's encoding is the FP4 round trip (§3.5).
  if (HasRoundTrips(numerics_)) ops::Hadamard(row.data(), dim);
  state.indexer_rows->Append(row.data());
}

std::vector<std::vector<int32_t>> Indexer::Select(const Projections& p, const std::vector<int64_t>& rows,
                                                  const std::vector<int64_t>& positions,
                                                  const LayerState& state) const {
  const int64_t heads = config_.index_n_heads, dim = config_.index_head_dim;
  const int64_t ratio = w_.compressor.ratio;
  const bool fp4 = HasRoundTrips(numerics_);  // FP4 queries and rows (SequenceState)
  std::vector<std::vector<int32_t>> selected(rows.size());
  // A group of queries is scored against all rows in one call; groups are
  // sized to bound the score buffer (and, in smooth numerics, the per-head
  // dot products [query][head][row]).
  constexpr int64_t kMaxScores = int64_t{8} << 20;
  const int64_t floats_per_row = fp4 ? 1 : heads;
  std::vector<float> scores, dots;
  std::vector<int64_t> visible;
  for (size_t begin = 0; begin < rows.size();) {
    const int64_t max_available = (positions[rows.back()] + 1) / ratio;
    const size_t group = std::clamp<int64_t>(kMaxScores / std::max<int64_t>(1, floats_per_row * max_available), 1,
                                             rows.size() - begin);
    const int64_t available = (positions[rows[begin + group - 1]] + 1) / ratio;
    visible.resize(group);
    for (size_t i = 0; i < group; ++i) visible[i] = (positions[rows[begin + i]] + 1) / ratio;
    scores.resize(group * available);
    if (available > 0 && fp4) {
      ScoreFp4(p, rows, begin, group, state.indexer_rows->View(available), visible, scores);
    } else if (available > 0) {
      // Smooth numerics: f32 rows, one MatMul for all heads of the group.
      std::vector<float> queries(group * heads * dim);
      for (size_t i = 0; i < group; ++i) {
        const float* q = p.query.data() + rows[begin + i] * heads * dim;
        std::copy(q, q + heads * dim, queries.begin() + i * heads * dim);
      }
      dots.resize(group * heads * available);
      MatMul(state.indexer_rows->View(available), queries.data(), group * heads, dots.data());
      for (size_t i = 0; i < group; ++i) {
        const float* weights = p.weights.data() + rows[begin + i] * heads;
        float* row_scores = scores.data() + i * available;
        std::fill(row_scores, row_scores + visible[i], 0.0f);
        for (int64_t h = 0; h < heads; ++h) {
          const float* d = dots.data() + (i * heads + h) * available;
          for (int64_t j = 0; j < visible[i]; ++j) row_scores[j] += std::max(d[j], 0.0f) * weights[h];
        }
      }
    }
    for (size_t i = 0; i < group; ++i) {
      if (available > 0) selected[begin + i] = ops::TopK(scores.data() + i * available, visible[i], config_.index_topk);
    }
    begin += group;
  }
  return selected;
}

void Indexer::ScoreFp4(const Projections& p, const std::vector<int64_t>& rows, size_t begin, size_t group,
                       const WeightMatrix& keys, const std::vector<int64_t>& visible,
                       std::vector<float>& scores) const {
  const int64_t heads = config_.index_n_heads, dim = config_.index_head_dim;
  const int64_t code_bytes = heads * dim / 2, scale_bytes = heads * dim / kFp4Block;
  std::vector<uint8_t> codes(group * code_bytes), scales(group * scale_bytes);
  std::vector<float> weights(group * heads);
  for (size_t i = 0; i < group; ++i) {
    const int64_t t = rows[begin + i];
    std::copy_n(p.query_codes.begin() + t * code_bytes, code_bytes, codes.begin() + i * code_bytes);
    std::copy_n(p.query_scales.begin() + t * scale_bytes, scale_bytes, scales.begin() + i * scale_bytes);
    std::copy_n(p.weights.begin() + t * heads, heads, weights.begin() + i * heads);
  }
  const IndexerQueries queries{Fp4Rows{codes.data(), scales.data(), static_cast<int64_t>(group) * heads, dim},
                               static_cast<int64_t>(group), heads, weights.data()};
  IndexerScores(queries, Fp4Rows{keys.data, keys.scales, keys.rows, dim}, visible.data(), scores.data(), keys.rows);
}

}  // namespace dsv4
