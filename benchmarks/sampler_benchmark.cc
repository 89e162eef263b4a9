// Time to sample one token from a row of DeepSeek-V4's 129,280 logits, per
// kind of request; 16-64 sequences do this every step. The passes over the
// whole vocabulary run on the OpenMP team:
//
//   OMP_NUM_THREADS=T build/benchmarks/sampler_benchmark [--benchmark_min_time=0.2]
//
// The logits are uniform in [-5, 5) ("flat": top-p keeps most of the
// vocabulary) or a few strong candidates over a low floor ("peaked", like a
// model that is sure of itself).
#include <benchmark/benchmark.h>

#include <vector>

#include "engine/runtime/sampler.h"

namespace dsv4 {
namespace {

constexpr int64_t kVocab = 129280;

std::vector<float> Logits(bool peaked) {
  std::vector<float> logits(kVocab);
  for (int64_t i = 0; i < kVocab; ++i) logits[i] = static_cast<float>(10 * KeyedUniform(1, 0, i) - 5);
  if (peaked) {
    for (float& l : logits) l -= 10;
    for (int i = 0; i < 8; ++i) logits[(i * 7919) % kVocab] = 12.0f - i;
  }
  return logits;
}

void Sample(benchmark::State& state, const SamplingParams& params, bool peaked) {
  const std::vector<float> logits = Logits(peaked);
  Sampler sampler(params, kVocab, 7);
  int64_t position = 0;
  for (auto _ : state) benchmark::DoNotOptimize(sampler.Sample(logits.data(), position++).token);
}

SamplingParams Params(double temperature, int64_t top_k, double top_p, double min_p, int top_logprobs = -1) {
  SamplingParams params;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  params.min_p = min_p;
  params.top_logprobs = top_logprobs;
  return params;
}

BENCHMARK_CAPTURE(Sample, greedy, Params(0, 0, 1, 0), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t1, Params(1, 0, 1, 0), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t1_top_p95_flat, Params(1, 0, 0.95, 0), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t1_top_p95_peaked, Params(1, 0, 0.95, 0), true)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t07_top_k40_top_p95, Params(0.7, 40, 0.95, 0), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t1_min_p05, Params(1, 0, 1, 0.05), false)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(Sample, t1_top_p95_logprobs5, Params(1, 0, 0.95, 0, 5), false)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace dsv4

BENCHMARK_MAIN();
