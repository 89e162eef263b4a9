#include "engine/model/model.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "engine/model/hyper_connection.h"
#include "loader/error.h"
#include "simd/matmul.h"
#include "simd/matrix_engine.h"
#include "simd/ops.h"

namespace dsv4 {

Model::Model(const Checkpoint& checkpoint, Numerics numerics, ExpertSource* experts)
    : config_(checkpoint.config()),
      numerics_(numerics),
      weights_(checkpoint),
      mapped_experts_(weights_),
      experts_(experts ? experts : &mapped_experts_) {
  CheckNumericsSupported(numerics);
  for (int64_t L = 0; L < config_.NumBlocks(); ++L) {
    const BlockWeights& b = weights_.blocks[L];
    blocks_.push_back({std::make_unique<Attention>(config_, b.attn, L, numerics),
                       std::make_unique<Moe>(config_, b.moe, L, *experts_)});
  }
}

void Model::PrefetchHashExperts(const std::vector<TokenRow>& rows) const {
  const int64_t k = config_.num_experts_per_tok;
  for (int64_t L = 0; L < config_.num_hidden_layers; ++L) {
    if (!config_.IsHashLayer(L)) continue;
    std::vector<bool> wanted(config_.n_routed_experts, false);
    for (const TokenRow& row : rows) {
      for (int64_t i = 0; i < k; ++i) {
        int64_t id;
        std::memcpy(&id, weights_.blocks[L].moe.tid2eid + (static_cast<int64_t>(row.token) * k + i) * 8, 8);
        if (id >= 0 && id < config_.n_routed_experts) wanted[id] = true;
      }
    }
    std::vector<int32_t> experts;
    for (int64_t e = 0; e < config_.n_routed_experts; ++e) {
      if (wanted[e]) experts.push_back(static_cast<int32_t>(e));
    }
    experts_->Prefetch(L, experts);
  }
}

// Here rather than in numerics.cc, whose parsing the fuzz harnesses link
// without the matrix engine.
void CheckNumericsSupported(Numerics numerics) {
  if (numerics == Numerics::kFast && Bf16MatrixUnit().empty()) {
    throw Error(
        "--numerics fast: this CPU has no bf16 matrix unit oneDNN can use (AMX-BF16 or AVX512-BF16); "
        "use --numerics default");
  }
}

MatMulPrecision Model::GemmPrecision() const {
  return numerics_ == Numerics::kFast ? MatMulPrecision::kBf16Activations : MatMulPrecision::kExact;
}

void Model::CheckRows(const std::vector<TokenRow>& rows, int64_t block) const {
  // Validate everything before any state changes, so a bad row leaves every
  // sequence as it was.
  std::map<const SequenceState*, int64_t> next;
  for (const TokenRow& row : rows) {
    if (!row.state->failure().empty()) throw Error(row.state->failure());
    if (row.token < 0 || row.token >= config_.vocab_size) {
      throw Error("token id " + std::to_string(row.token) + " is outside the vocabulary [0, " +
                  std::to_string(config_.vocab_size) + ")");
    }
    if (row.position >= config_.max_position_embeddings) {
      throw Error("position " + std::to_string(row.position) + " exceeds max_position_embeddings (" +
                  std::to_string(config_.max_position_embeddings) + ")");
    }
    auto [it, fresh] = next.emplace(row.state, row.state->layer(block).length);
    if (row.position != it->second) {
      throw Error("row at position " + std::to_string(row.position) + " does not continue its sequence (next " +
                  "position " + std::to_string(it->second) + ")");
    }
    ++it->second;
  }
}

void Model::RunBlock(int64_t block, const std::vector<TokenRow>& rows, std::vector<float>& streams) const {
  const int64_t n = rows.size(), hidden = config_.hidden_size;
  const BlockWeights& w = weights_.blocks[block];
  std::vector<LayerRow> layer_rows(n);
  std::vector<int32_t> tokens(n);
  for (int64_t t = 0; t < n; ++t) {
    layer_rows[t] = {rows[t].position, &rows[t].state->layer(block)};
    tokens[t] = rows[t].token;
  }
  std::vector<float> x(n * hidden), y(n * hidden);
  HcMixing mixing;

  HcPre(config_, w.hc_attn, streams.data(), n, x.data(), mixing);
  for (int64_t t = 0; t < n; ++t) {
    ops::RmsNorm(x.data() + t * hidden, w.attn_norm.data(), hidden, config_.rms_norm_eps, x.data() + t * hidden);
  }
  blocks_[block].attention->Forward(x.data(), layer_rows, y.data());
  HcPost(config_, mixing, y.data(), n, streams.data());

  HcPre(config_, w.hc_ffn, streams.data(), n, x.data(), mixing);
  for (int64_t t = 0; t < n; ++t) {
    ops::RmsNorm(x.data() + t * hidden, w.ffn_norm.data(), hidden, config_.rms_norm_eps, x.data() + t * hidden);
  }
  blocks_[block].moe->Forward(x.data(), tokens.data(), n, y.data());
  HcPost(config_, mixing, y.data(), n, streams.data());
}

void Model::Logits(const HyperConnectionWeights& hc_head, const std::vector<float>& norm, const float* streams,
                   const std::vector<int64_t>& selected, float* logits) const {
  const int64_t hidden = config_.hidden_size, width = config_.hc_mult * hidden;
  const int64_t k = selected.size();
  if (k == 0) return;
  std::vector<float> picked(k * width), h(k * hidden);
  for (int64_t i = 0; i < k; ++i) {
    std::copy(streams + selected[i] * width, streams + (selected[i] + 1) * width, picked.begin() + i * width);
  }
  HcHead(config_, hc_head, picked.data(), k, h.data());
  for (int64_t i = 0; i < k; ++i) {
    ops::RmsNorm(h.data() + i * hidden, norm.data(), hidden, config_.rms_norm_eps, h.data() + i * hidden);
  }
  MatMul(weights_.head, h.data(), k, logits);
}

void Model::Forward(const std::vector<TokenRow>& rows, const std::vector<int64_t>& logit_rows, float* logits,
                    std::vector<float>* final_streams) const {
  CheckRows(rows, 0);
  const int64_t n = rows.size(), hidden = config_.hidden_size, hc = config_.hc_mult;
  for (int64_t r : logit_rows) {
    if (r < 0 || r >= n) throw Error("logit row " + std::to_string(r) + " is not in the batch");
  }
  std::vector<SequenceState*> states;
  for (const TokenRow& row : rows) {
    if (std::find(states.begin(), states.end(), row.state) == states.end()) states.push_back(row.state);
  }
  const MatMulPrecisionScope precision(GemmPrecision());
  std::vector<float> streams(n * hc * hidden);
  try {
    PrefetchHashExperts(rows);
    // Embedding, copied into every stream.
    for (int64_t t = 0; t < n; ++t) {
      float* s = streams.data() + t * hc * hidden;
      DecodeRow(weights_.embed, rows[t].token, s);
      for (int64_t j = 1; j < hc; ++j) std::copy(s, s + hidden, s + j * hidden);
    }
    for (int64_t L = 0; L < config_.num_hidden_layers; ++L) RunBlock(L, rows, streams);
  } catch (const std::exception& e) {
    // Some layers may hold this call's rows and others not: such a state is
    // never computed from again.
    for (SequenceState* state : states) {
      state->MarkFailed(std::string("the sequence is unusable after a failed forward call: ") + e.what());
    }
    throw;
  }
  Logits(weights_.hc_head, weights_.norm, streams.data(), logit_rows, logits);
  // Spilling happens between calls, once every layer has its rows, so a
  // failed spill write leaves each sequence complete and consistent.
  for (SequenceState* state : states) state->EnforceKvBudget();
  if (final_streams) *final_streams = std::move(streams);
}

void Model::ForwardMtp(const std::vector<TokenRow>& rows, const float* streams, const std::vector<int64_t>& logit_rows,
                       float* logits, std::vector<float>* block_streams) const {
  if (config_.num_nextn_predict_layers == 0) throw Error("this checkpoint has no MTP block");
  const int64_t block = config_.num_hidden_layers;
  CheckRows(rows, block);
  const int64_t n = rows.size(), hidden = config_.hidden_size, hc = config_.hc_mult;
  for (int64_t r : logit_rows) {
    if (r < 0 || r >= n) throw Error("logit row " + std::to_string(r) + " is not in the batch");
  }
  const MatMulPrecisionScope precision(GemmPrecision());
  const MtpWeights& mtp = weights_.blocks[block].mtp;
  // Y[s] = e_proj(norm(embed(next token))) + h_proj(norm(stream s)).
  std::vector<float> embedded(n * hidden), projected_embedding(n * hidden);
  for (int64_t t = 0; t < n; ++t) {
    float* e = embedded.data() + t * hidden;
    DecodeRow(weights_.embed, rows[t].token, e);
    ops::RmsNorm(e, mtp.enorm.data(), hidden, config_.rms_norm_eps, e);
  }
  MatMul(mtp.e_proj, embedded.data(), n, projected_embedding.data());
  std::vector<float> normed(n * hc * hidden), mixed(n * hc * hidden);
  for (int64_t i = 0; i < n * hc; ++i) {
    ops::RmsNorm(streams + i * hidden, mtp.hnorm.data(), hidden, config_.rms_norm_eps, normed.data() + i * hidden);
  }
  MatMul(mtp.h_proj, normed.data(), n * hc, mixed.data());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t s = 0; s < hc; ++s) {
      float* y = mixed.data() + (t * hc + s) * hidden;
      const float* e = projected_embedding.data() + t * hidden;
      for (int64_t c = 0; c < hidden; ++c) y[c] += e[c];
    }
  }
  RunBlock(block, rows, mixed);
  Logits(mtp.hc_head, mtp.norm, mixed.data(), logit_rows, logits);
  if (block_streams) *block_streams = std::move(mixed);
}

}  // namespace dsv4
