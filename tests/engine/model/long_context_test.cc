// A >= 100k-token sequence on a small synthetic configuration: chunked
// prefill with the compressed KV spilled to disk under a tiny RAM budget
// gives bit-identical logits to keeping everything in RAM, and the KV in RAM
// stays within the budget plus the rows that never spill.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "engine/runtime/sequence_runner.h"
#include "loader/synth.h"
#include "tests/support/matmul_kernels_scope.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

std::vector<int32_t> Tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> tokens(n);
  uint64_t x = 12345;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    tokens[i] = static_cast<int32_t>((x >> 33) % vocab);
  }
  return tokens;
}

TEST(LongContext, HundredThousandTokensSpilledEqualsInRam) {
  const testing::MatMulKernelsScope kernels(MatMulImpl::kSimd);
  testing::TempDir dir;
  const ModelConfig config = LongContextConfig();
  SynthesizeCheckpoint(config, SynthOptions{}, dir.File("model"));
  Checkpoint checkpoint(dir.File("model"));
  Model model(checkpoint, Numerics::kDefault);
  const int64_t n = testing::SizeUnlessSanitized(100'000, 20'000);  // spills either way
  const std::vector<int32_t> prompt = Tokens(n, config.vocab_size);
  const std::vector<int32_t> decode = Tokens(4, config.vocab_size);

  auto run = [&](const KvOptions& kv, int64_t* ram, int64_t* spilled) {
    const auto start = std::chrono::steady_clock::now();
    SequenceRunner runner(model, 4096, kv);
    std::vector<float> logits = runner.Feed(prompt, false);
    for (int32_t t : decode) {
      const std::vector<float> row = runner.Feed({t}, false);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    *ram = runner.state().kv_ram_bytes();
    *spilled = runner.state().kv_spilled_bytes();
    std::printf("%lld tokens in %.1f s, KV in RAM %lld B, spilled %lld B\n", static_cast<long long>(runner.length()),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                static_cast<long long>(*ram), static_cast<long long>(*spilled));
    return logits;
  };
  int64_t ram = 0, spilled = 0;
  const std::vector<float> in_ram = run(KvOptions{}, &ram, &spilled);
  for (float v : in_ram) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(spilled, 0);

  KvOptions spill;
  spill.spill_dir = dir.File("kv");
  spill.ram_budget = 64 << 10;
  int64_t spilled_ram = 0;
  const std::vector<float> with_spill = run(spill, &spilled_ram, &spilled);
  EXPECT_EQ(std::memcmp(in_ram.data(), with_spill.data(), in_ram.size() * sizeof(float)), 0);
  EXPECT_GT(spilled, 0);
  EXPECT_LT(spilled_ram, ram);
}

}  // namespace
}  // namespace dsv4
