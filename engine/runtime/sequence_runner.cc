#include "engine/runtime/sequence_runner.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "engine/model/session_file.h"
#include "engine/runtime/progress_line.h"
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
  // Progress for prefills of more than one chunk.
  const bool show_progress = n > chunk;
  ProgressLine progress;
  double last_report = 0;
  int64_t last_reported_end = 0;
  bool reported = false;
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
    // The average and the rate since the last report (long contexts slow
    // down as the indexer scans more rows), and where the KV cache is; the
    // last state only if an earlier one was shown.
    if (show_progress && (end < n || reported)) {
      const double seconds = progress.Seconds();
      if (progress.Update(end == n, "prefill %lld/%lld tokens, %.1f tok/s (now %.1f), KV %.1f MB in RAM, %.1f MB spilled",
                          static_cast<long long>(end), static_cast<long long>(n), end / seconds,
                          (end - last_reported_end) / std::max(seconds - last_report, 1e-9),
                          state_.kv_ram_bytes() / 1e6, state_.kv_spilled_bytes() / 1e6)) {
        last_report = seconds;
        last_reported_end = end;
        reported = true;
      }
    }
  }
  tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  last_logits_.assign(logits.end() - c.vocab_size, logits.end());
  return logits;
}

void SequenceRunner::Save(const std::string& path, uint64_t model_identity) const {
  SaveSession(path, state_, {tokens_, last_logits_}, model_identity);
}

void SequenceRunner::Load(const std::string& path, uint64_t model_identity) {
  SessionContents contents = LoadSession(path, state_, model_identity);
  tokens_ = std::move(contents.tokens);
  last_logits_ = std::move(contents.last_logits);
}

std::string PrefixSessionPath(const std::string& dir, const std::vector<int32_t>& tokens) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (int32_t t : tokens) h = (h ^ static_cast<uint32_t>(t)) * 0x100000001B3ull;
  char name[64];
  std::snprintf(name, sizeof name, "prefix-%zu-%016llx.dsv4session", tokens.size(),
                static_cast<unsigned long long>(h));
  return (std::filesystem::path(dir) / name).string();
}

std::string FindPrefixSession(const std::string& dir, const std::vector<int32_t>& tokens, uint64_t model_identity,
                              Numerics numerics, int64_t* matched) {
  // Candidates longest first; the first whose checksum holds wins, so a
  // damaged file (a disk error, a copy cut short) is skipped, not loaded.
  std::vector<std::pair<int64_t, std::string>> candidates;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".dsv4session") continue;
    const std::vector<int32_t> saved = PeekSessionTokens(entry.path().string(), model_identity, numerics);
    const int64_t n = saved.size();
    if (n > 0 && n <= static_cast<int64_t>(tokens.size()) && std::equal(saved.begin(), saved.end(), tokens.begin())) {
      candidates.emplace_back(n, entry.path().string());
    }
  }
  std::sort(candidates.begin(), candidates.end(), std::greater<>());
  for (const auto& [n, path] : candidates) {
    if (!SessionChecksumHolds(path)) {
      std::fprintf(stderr, "%s: damaged (checksum mismatch); skipped\n", path.c_str());
      continue;
    }
    *matched = n;
    return path;
  }
  *matched = 0;
  return "";
}

}  // namespace dsv4
