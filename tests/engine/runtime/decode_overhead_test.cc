#include "engine/runtime/decode_overhead.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "loader/synth.h"
#include "simd/matmul.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;

int TimedModelsLeftBehind() {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path())) {
    count += entry.path().filename().string().rfind("dsv4-decode-overhead-", 0) == 0;
  }
  return count;
}

DecodeReadRates Rates(double gbps) {
  DecodeReadRates rates;
  rates.ram_gbps = rates.fp4_gbps = rates.fp8_gbps = rates.bf16_gbps = gbps;
  rates.step_overhead_seconds = 1;  // ignored: the probe measures it
  return rates;
}

TEST(DecodeOverhead, TimesAZeroWeightModelOfTheCheckpointsWidths) {
  SetMatMulKernels(MatMulImpl::kSimd);
  const int left_before = TimedModelsLeftBehind();
  const ModelConfig config = TinyConfig();  // 7 layers
  const DecodeOverhead slow = MeasureDecodeOverhead(config, Numerics::kDefault, Rates(0.001), int64_t{1} << 30);
  EXPECT_EQ(slow.layers, 4);
  EXPECT_GT(slow.weight_bytes, 0);
  EXPECT_GT(slow.step_seconds, 0);
  // Reads priced at 1 MB/s take longer than the step did: no overhead.
  EXPECT_GT(slow.roofline_seconds, slow.step_seconds);
  EXPECT_EQ(slow.seconds_per_layer, 0);
  // Priced as free, the whole step is overhead.
  const DecodeOverhead fast = MeasureDecodeOverhead(config, Numerics::kDefault, Rates(1e9), int64_t{1} << 30);
  EXPECT_LT(fast.roofline_seconds, 1e-6);
  EXPECT_NEAR(fast.seconds_per_layer, (fast.step_seconds - fast.roofline_seconds) / 4, 1e-12);
  EXPECT_EQ(TimedModelsLeftBehind(), left_before);  // the sparse checkpoints are gone
}

TEST(DecodeOverhead, StaysWithinItsBytes) {
  SetMatMulKernels(MatMulImpl::kSimd);
  const ModelConfig config = TinyConfig();
  const DecodeOverhead four = MeasureDecodeOverhead(config, Numerics::kDefault, Rates(10), int64_t{1} << 30);
  ASSERT_EQ(four.layers, 4);
  // Room for fewer layers: fewer are timed, within it.
  const int64_t room = four.weight_bytes / 2;
  const DecodeOverhead fewer = MeasureDecodeOverhead(config, Numerics::kDefault, Rates(10), room);
  EXPECT_GE(fewer.layers, 1);
  EXPECT_LT(fewer.layers, 4);
  EXPECT_LE(fewer.weight_bytes, room);
  // No room for one layer: nothing timed.
  const DecodeOverhead none = MeasureDecodeOverhead(config, Numerics::kDefault, Rates(10), 4096);
  EXPECT_EQ(none.layers, 0);
  EXPECT_EQ(none.seconds_per_layer, 0);
  EXPECT_NE(none.not_timed.find("exceed"), std::string::npos) << none.not_timed;
}

TEST(DecodeOverhead, ATemporaryDirectoryItCannotUseTimesNothingAndSaysWhy) {
  SetMatMulKernels(MatMulImpl::kSimd);
  const char* previous = std::getenv("TMPDIR");
  const std::string saved = previous ? previous : "";
  ::setenv("TMPDIR", "/nonexistent/dsv4-tmp", 1);
  const DecodeOverhead none = MeasureDecodeOverhead(TinyConfig(), Numerics::kDefault, Rates(10), int64_t{1} << 30);
  previous ? ::setenv("TMPDIR", saved.c_str(), 1) : ::unsetenv("TMPDIR");
  EXPECT_EQ(none.layers, 0);
  EXPECT_EQ(none.seconds_per_layer, 0);
  EXPECT_NE(none.not_timed.find("temporary directory"), std::string::npos) << none.not_timed;
}

}  // namespace
}  // namespace dsv4
