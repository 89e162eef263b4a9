#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/model/compressor.h"
#include "engine/kv/kv_codec.h"
#include "loader/error.h"
#include "simd/matmul.h"
#include "simd/number_formats.h"
#include "simd/ops.h"

namespace dsv4 {

Attention::Attention(const ModelConfig& config, const AttentionWeights& weights, int64_t layer, Numerics numerics)
    : config_(config), w_(weights), numerics_(numerics), rope_(Rope::ForLayer(config, layer)) {
  if (w_.has_indexer) indexer_ = std::make_unique<Indexer>(config, w_.indexer, rope_, numerics);
}

void Attention::AdvanceCompressor(const float* kv, const float* gate, int64_t position, LayerState& state) const {
  const CompressorWeights& cw = w_.compressor;
  const int64_t d = config_.head_dim;
  std::vector<float> row(d);
  if (!CompressorStep(cw, state.compressor, position, kv, gate, row.data())) return;
  ops::RmsNorm(row.data(), cw.norm.data(), d, config_.rms_norm_eps, row.data());
  rope_.Apply(row.data() + config_.NopeHeadDim(), (position / cw.ratio) * cw.ratio);
  // In default numerics the store's encoding is the FP8 round trip (§3.4).
  state.compressed->Append(row.data());
}

namespace {

// scores[h * n + offset + e] = q_h . run[e] for the `len` contiguous KV rows
// of one run: a MatMul with the rows as F32 weights and the heads as its
// batch, so the SIMD GEMM sums each score in the reference's order.
void ScoreRun(const float* q, int64_t heads, int64_t d, const float* run, int64_t len, int64_t n, int64_t offset,
              float* scores) {
  if (len == 0) return;
  WeightMatrix rows;
  rows.format = WeightFormat::kF32;
  rows.rows = len;
  rows.cols = d;
  rows.data = reinterpret_cast<const uint8_t*>(run);
  std::vector<float> dots(heads * len);
  MatMul(rows, q, heads, dots.data());
  for (int64_t h = 0; h < heads; ++h) std::copy_n(dots.data() + h * len, len, scores + h * n + offset);
}

}  // namespace

void Attention::Attend(const float* q, int64_t position, const Rope::Angles& angles, const LayerState& state,
                       const float* compressed, int64_t num_compressed, float* out) const {
  const int64_t heads = config_.num_attention_heads, d = config_.head_dim, window = config_.sliding_window;
  // Candidate KV rows: the window positions max(0, p-W+1)..p, then the
  // compressed candidates.
  const int64_t first = std::max<int64_t>(0, position - window + 1);
  std::vector<const float*> rows;
  for (int64_t pos = first; pos <= position; ++pos) rows.push_back(state.window.data() + (pos % window) * d);
  for (int64_t j = 0; j < num_compressed; ++j) rows.push_back(compressed + j * d);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  const int64_t n = static_cast<int64_t>(rows.size());
  // The window ring wraps at most once: two runs, then the compressed one.
  const int64_t in_window = position - first + 1, ring_start = first % window;
  const int64_t before_wrap = std::min(in_window, window - ring_start);
  std::vector<float> all_scores(heads * n);
  ScoreRun(q, heads, d, rows[0], before_wrap, n, 0, all_scores.data());
  ScoreRun(q, heads, d, state.window.data(), in_window - before_wrap, n, before_wrap, all_scores.data());
  ScoreRun(q, heads, d, compressed, num_compressed, n, in_window, all_scores.data());
  // Unnormalized weights p[h][e] and their sums z[h], then the weighted sums
  // of the value rows in f64 (one FMA per element, the same in either
  // implementation): the output feeds FP8 round trips downstream, where f32
  // summation noise measurably flips roundings (golden A). Kept per thread:
  // a prefill calls this once per row and layer. (Inside the parallel
  // regions a thread_local names the running thread's own copy: only the
  // pointers taken here go in.)
  thread_local std::vector<double> probs_buffer, sums_buffer, acc_buffer;
  probs_buffer.resize(heads * n);
  sums_buffer.resize(heads);
  acc_buffer.assign(heads * d, 0.0);
  double* const probs = probs_buffer.data();
  double* const sums = sums_buffer.data();
  double* const acc = acc_buffer.data();
  const bool parallel = heads * n * d > (1 << 20);
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t h = 0; h < heads; ++h) {
    float* scores = all_scores.data() + h * n;
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t e = 0; e < n; ++e) {
      scores[e] *= scale;
      max_score = std::max(max_score, scores[e]);
    }
    // The sink joins the denominator only; it takes no part in the max.
    double z = std::exp(static_cast<double>(w_.sink[h]) - max_score);
    for (int64_t e = 0; e < n; ++e) {
      probs[h * n + e] = std::exp(static_cast<double>(scores[e]) - max_score);
      z += probs[h * n + e];
    }
    sums[h] = z;
  }
  // Groups of heads share each pass over the rows (ops::WeightedRowSums).
  constexpr int64_t kHeadsPerTask = 8;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t h0 = 0; h0 < heads; h0 += kHeadsPerTask) {
    const int64_t count = std::min(kHeadsPerTask, heads - h0);
    ops::WeightedRowSums(probs + h0 * n, n, count, rows.data(), n, d, acc + h0 * d);
  }
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t h = 0; h < heads; ++h) {
    float* o = out + h * d;
    for (int64_t c = 0; c < d; ++c) o[c] = static_cast<float>(acc[h * d + c] / sums[h]);
    rope_.Apply(o + config_.NopeHeadDim(), angles, /*inverse=*/true);
  }
}

void Attention::Forward(const float* input, const std::vector<LayerRow>& rows, float* out) const {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(rows.size());
  const int64_t heads = c.num_attention_heads, d = c.head_dim;
  const int64_t nope = c.NopeHeadDim(), q_lora = c.q_lora_rank;

  std::vector<int64_t> positions(n);
  for (int64_t t = 0; t < n; ++t) positions[t] = rows[t].position;

  // Q path: low-rank query, per-head RMS normalization, RoPE.
  std::vector<float> q_lora_rows(n * q_lora), q(n * heads * d);
  MatMul(w_.wq_a, input, n, q_lora_rows.data());
  for (int64_t t = 0; t < n; ++t) {
    float* x = q_lora_rows.data() + t * q_lora;
    ops::RmsNorm(x, w_.q_norm.data(), q_lora, c.rms_norm_eps, x);
  }
  MatMul(w_.wq_b, q_lora_rows.data(), n, q.data());
  // One set of angles per token serves its heads and its KV row.
  std::vector<Rope::Angles> angles(n);
  for (int64_t t = 0; t < n; ++t) {
    angles[t] = rope_.AnglesAt(positions[t]);
    for (int64_t h = 0; h < heads; ++h) {
      float* qh = q.data() + (t * heads + h) * d;
      ops::RmsNorm(qh, nullptr, d, c.rms_norm_eps, qh);
      rope_.Apply(qh + nope, angles[t]);
    }
  }
  // KV path: one shared row per token.
  std::vector<float> kv(n * d);
  MatMul(w_.wkv, input, n, kv.data());
  for (int64_t t = 0; t < n; ++t) {
    float* x = kv.data() + t * d;
    ops::RmsNorm(x, w_.kv_norm.data(), d, c.rms_norm_eps, x);
    rope_.Apply(x + nope, angles[t]);
    if (HasRoundTrips(numerics_)) Fp8RoundTrip(x, nope, kFp8Block);
  }
  std::vector<float> compressor_kv, compressor_gate;
  if (w_.compressed) {
    const int64_t width = w_.compressor.wkv.rows;
    compressor_kv.resize(n * width);
    compressor_gate.resize(n * width);
    MatMul(w_.compressor.wkv, input, n, compressor_kv.data());
    MatMul(w_.compressor.wgate, input, n, compressor_gate.data());
  }
  Indexer::Projections index_projections;
  if (indexer_) index_projections = indexer_->Project(input, q_lora_rows.data(), positions.data(), n);

  // Compressed and indexer rows depend only on the layer inputs, so every
  // row this call completes is appended first; each query below then sees
  // exactly the rows that exist at its position (spec §4.13).
  for (int64_t t = 0; t < n; ++t) {
    LayerState& state = *rows[t].state;
    if (indexer_) indexer_->AdvanceRows(index_projections, t, positions[t], state);
    if (w_.compressed) {
      const int64_t width = w_.compressor.wkv.rows;
      AdvanceCompressor(compressor_kv.data() + t * width, compressor_gate.data() + t * width, positions[t], state);
    }
  }
  std::vector<std::vector<int32_t>> selected(n);
  if (indexer_) {
    // One batched scoring per sequence in the call.
    std::vector<bool> done(n, false);
    for (int64_t t = 0; t < n; ++t) {
      if (done[t]) continue;
      std::vector<int64_t> members;
      for (int64_t u = t; u < n; ++u) {
        if (rows[u].state == rows[t].state) {
          members.push_back(u);
          done[u] = true;
        }
      }
      auto picks = indexer_->Select(index_projections, members, positions, *rows[t].state);
      for (size_t i = 0; i < members.size(); ++i) selected[members[i]] = std::move(picks[i]);
    }
  }
  // Then token by token, in order: the window takes each KV row just before
  // its own attention, so the ring holds positions p-W+1..p at that time.
  // HCA queries read every available compressed row, from the state's
  // decoded rows, extended by the rows new at this position.
  std::vector<float> attended(n * heads * d), candidates;
  for (int64_t t = 0; t < n; ++t) {
    LayerState& state = *rows[t].state;
    const int64_t p = positions[t];
    std::copy(kv.begin() + t * d, kv.begin() + (t + 1) * d, state.window.begin() + (p % c.sliding_window) * d);
    int64_t num_compressed = 0;
    const float* compressed_rows = nullptr;
    if (indexer_) {
      num_compressed = selected[t].size();
      candidates.resize(num_compressed * d);
      state.compressed->Gather(selected[t].data(), num_compressed, candidates.data());
      compressed_rows = candidates.data();
    } else if (w_.compressed) {
      num_compressed = (p + 1) / w_.compressor.ratio;
      const int64_t decoded = static_cast<int64_t>(state.decoded_rows.size()) / d;
      if (num_compressed > decoded) {
        state.decoded_rows.resize(num_compressed * d);
        state.compressed->GatherRange(decoded, num_compressed, state.decoded_rows.data() + decoded * d);
      }
      compressed_rows = state.decoded_rows.data();
    }
    Attend(q.data() + t * heads * d, p, angles[t], state, compressed_rows, num_compressed,
           attended.data() + t * heads * d);
    state.length = p + 1;
  }

  // Grouped output projection: group g maps its heads' outputs to o_lora dims.
  const int64_t groups = c.o_groups, group_in = heads / groups * d, o_lora = c.o_lora_rank;
  std::vector<float> group_input(n * group_in), group_out(n * o_lora), low_rank(n * groups * o_lora);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t t = 0; t < n; ++t) {
      const float* src = attended.data() + t * heads * d + g * group_in;
      std::copy(src, src + group_in, group_input.begin() + t * group_in);
    }
    MatMul(SliceRows(w_.wo_a, g * o_lora, o_lora), group_input.data(), n, group_out.data());
    for (int64_t t = 0; t < n; ++t) {
      std::copy(group_out.begin() + t * o_lora, group_out.begin() + (t + 1) * o_lora,
                low_rank.begin() + (t * groups + g) * o_lora);
    }
  }
  MatMul(w_.wo_b, low_rank.data(), n, out);
}

}  // namespace dsv4
