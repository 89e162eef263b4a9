#include "engine/sequence_runner.h"

#include <chrono>
#include <cstdio>

#include "loader/error.h"

namespace dsv4 {

SequenceRunner::SequenceRunner(const Model& model, int64_t chunk, const KvOptions& kv)
    : model_(model), chunk_(chunk), state_(model.config(), model.numerics(), kv) {}

std::vector<float> SequenceRunner::Feed(const std::vector<int32_t>& tokens, bool all_positions) {
  const ModelConfig& c = model_.config();
  const int64_t n = tokens.size(), start = state_.length();
  if (n == 0) return {};
  if (start + n > c.max_position_embeddings) {
    throw Error("the sequence would reach " + std::to_string(start + n) + " tokens; the model's context is " +
                std::to_string(c.max_position_embeddings) + " (max_position_embeddings)");
  }
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.vocab_size) {
      throw Error("token id " + std::to_string(tokens[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    }
  }
  const int64_t chunk = chunk_ > 0 ? chunk_ : n;
  const bool show_progress = n > chunk;
  const auto begin_time = std::chrono::steady_clock::now();
  std::vector<float> logits((all_positions ? n : 1) * c.vocab_size);
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    std::vector<TokenRow> rows;
    std::vector<int64_t> wanted;
    for (int64_t i = begin; i < end; ++i) {
      rows.push_back({tokens[i], start + i, &state_});
      if (all_positions || i == n - 1) wanted.push_back(i - begin);
    }
    float* out = logits.data() + (all_positions ? begin * c.vocab_size : 0);
    model_.Forward(rows, wanted, out);
    if (show_progress) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin_time).count();
      std::fprintf(stderr, "\rprefill %lld/%lld tokens, %.1f tok/s", static_cast<long long>(end),
                   static_cast<long long>(n), end / seconds);
      if (end == n) std::fprintf(stderr, "\n");
    }
  }
  return logits;
}

}  // namespace dsv4
