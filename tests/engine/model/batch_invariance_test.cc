// Batch invariance (contracts.md §1): a row's logits are the same bits
// whether its sequence runs alone or beside others in one Forward, whatever
// the prefill chunk, prefill versus decode, and the thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "engine/model/model.h"
#include "simd/matmul.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

class BatchInvariance : public ::testing::Test {
 protected:
  void SetUp() override {
    SetMatMulKernels(MatMulImpl::kSimd);
    threads_ = omp_get_max_threads();
  }
  void TearDown() override {
    SetMatMulKernels(MatMulImpl::kReference);
    omp_set_num_threads(threads_);
  }

  // Every position's logits of one sequence fed in chunks of `chunk` rows.
  std::vector<float> Alone(const std::vector<int32_t>& tokens, int64_t chunk) {
    SequenceState state(model_.config(), model_.numerics());
    const int64_t vocab = model_.config().vocab_size, n = tokens.size();
    std::vector<float> logits(n * vocab);
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      std::vector<TokenRow> rows;
      std::vector<int64_t> wanted;
      for (int64_t i = begin; i < end; ++i) {
        rows.push_back({tokens[i], i, &state});
        wanted.push_back(i - begin);
      }
      model_.Forward(rows, wanted, logits.data() + begin * vocab);
    }
    return logits;
  }

  int threads_ = 1;
  testing::Golden golden_;
  Checkpoint checkpoint_{golden_.checkpoint_dir()};
  Model model_{checkpoint_, Numerics::kDefault};
};

bool Same(const float* a, const float* b, int64_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

TEST_F(BatchInvariance, MixedForwardEqualsSeparateCalls) {
  const int64_t vocab = model_.config().vocab_size;
  // Three sequences of different lengths (one crosses the 128-row window),
  // interleaved step by step: prefill chunks of one beside decode rows of
  // the others, as the scheduler packs them.
  const std::vector<std::vector<int32_t>> prompts = {testing::TokenIds(150, 1), testing::TokenIds(9, 2), testing::TokenIds(60, 3)};
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) alone.push_back(Alone(p, 1));

  std::vector<std::unique_ptr<SequenceState>> states;
  for (size_t s = 0; s < prompts.size(); ++s) {
    states.push_back(std::make_unique<SequenceState>(model_.config(), model_.numerics()));
  }
  std::vector<int64_t> fed(prompts.size(), 0);
  const int64_t chunks[] = {37, 1, 5};
  std::vector<std::vector<float>> mixed(prompts.size());
  for (size_t s = 0; s < prompts.size(); ++s) mixed[s].resize(prompts[s].size() * vocab);
  for (int step = 0;; ++step) {
    std::vector<TokenRow> rows;
    std::vector<std::pair<size_t, int64_t>> owner;  // (sequence, position) per row
    for (size_t s = 0; s < prompts.size(); ++s) {
      const int64_t n = prompts[s].size();
      const int64_t take = std::min(n - fed[s], chunks[(s + step) % 3]);
      for (int64_t i = fed[s]; i < fed[s] + take; ++i) {
        rows.push_back({prompts[s][i], i, states[s].get()});
        owner.push_back({s, i});
      }
      fed[s] += take;
    }
    if (rows.empty()) break;
    std::vector<int64_t> wanted(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) wanted[i] = i;
    std::vector<float> logits(rows.size() * vocab);
    model_.Forward(rows, wanted, logits.data());
    for (size_t i = 0; i < rows.size(); ++i) {
      std::memcpy(mixed[owner[i].first].data() + owner[i].second * vocab, logits.data() + i * vocab,
                  vocab * sizeof(float));
    }
  }
  for (size_t s = 0; s < prompts.size(); ++s) {
    for (size_t p = 0; p < prompts[s].size(); ++p) {
      ASSERT_TRUE(Same(alone[s].data() + p * vocab, mixed[s].data() + p * vocab, vocab))
          << "sequence " << s << " position " << p;
    }
  }
}

TEST_F(BatchInvariance, ChunkSizesAndThreadCountsGiveEqualLogits) {
  const std::vector<int32_t> prompt = testing::TokenIds(160, 4);
  const std::vector<float> reference = Alone(prompt, 512);
  for (const int64_t chunk : {1, 37, 160}) {
    for (const int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      EXPECT_TRUE(Same(reference.data(), Alone(prompt, chunk).data(), reference.size()))
          << "chunk " << chunk << ", threads " << threads;
    }
  }
}

}  // namespace
}  // namespace dsv4
