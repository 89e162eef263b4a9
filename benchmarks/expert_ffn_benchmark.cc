// One routed expert of DeepSeek-V4-Flash (FP4 w1/w3 2048x4096, w2 4096x2048,
// per-32 E8M0 scales) fused (ExpertFfnSimd: one OpenMP team, one packed
// input for w1 and w3, the activation applied by the thread that computed
// the rows) against the same three MatMulSimd calls and an activation pass,
// for M = 1, 4, 16 and 128 rows sharing the expert; and the six routed
// experts of one decode layer (a row each, or 4 with 4 sequences) as one
// ExpertFfnGroup (one team, one fork and join) against ExpertFfnSimd one
// after another, and grouped with the layer's FP8 shared expert (2048 x
// 4096, 128 x 128 scale tiles; one copy, read every iteration) as
// Moe::Forward runs them. Routed experts are cycled through copies larger
// than the last-level cache, so they read DRAM; the DRAM read probe of the same run
// comes first. bf16_decode/fp4: DecodeRowsBf16 of w1 (what --numerics fast
// does to each weight panel before oneDNN) on one thread, into a 256-row
// panel, in weights per second.
//
// Counters: us_per_expert (routed experts), GBps (weight bytes per second)
// and pct_of_read_bw (against the probe); with the shared expert also
// us_per_layer, and GBps counts its bytes too.
//
//   expert_ffn_benchmark [--threads=N] [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "simd/bf16_weights.h"
#include "simd/expert_ffn.h"
#include "simd/matmul.h"
#include "simd/roofline.h"
#include "simd/threads.h"

namespace dsv4 {
namespace {

constexpr int64_t kHidden = 4096, kInner = 2048;
constexpr float kSwiGluLimit = 10.0f;

// One FP4 matrix with realistic codes (uniform nibbles) and scales (2^-9 .. 2^-1).
struct Fp4Matrix {
  std::vector<uint8_t> data, scales;
  WeightMatrix w;
  Fp4Matrix(int64_t rows, int64_t cols, std::mt19937& rng) : data(rows * cols / 2), scales(rows * cols / 32) {
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    for (auto& s : scales) s = static_cast<uint8_t>(118 + rng() % 9);
    w.format = WeightFormat::kE2M1Grouped;
    w.rows = rows;
    w.cols = cols;
    w.block_cols = 32;
    w.data = data.data();
    w.scales = scales.data();
  }
};

// One FP8 matrix: E4M3 codes (any but the NaN codes 0x7F and 0xFF) and
// one E8M0 scale (2^-9 .. 2^-1) per 128 x 128 tile, as the shared expert's.
struct Fp8Matrix {
  std::vector<uint8_t> data, scales;
  WeightMatrix w;
  Fp8Matrix(int64_t rows, int64_t cols, std::mt19937& rng) : data(rows * cols), scales((rows / 128) * (cols / 128)) {
    for (auto& b : data) b = static_cast<uint8_t>(rng() % 0x7F) | static_cast<uint8_t>(rng() & 0x80);
    for (auto& s : scales) s = static_cast<uint8_t>(118 + rng() % 9);
    w.format = WeightFormat::kE4M3Blocked;
    w.rows = rows;
    w.cols = cols;
    w.block_rows = 128;
    w.block_cols = 128;
    w.data = data.data();
    w.scales = scales.data();
  }
};

template <class Matrix>
struct ExpertOf {
  Matrix w1, w3, w2;
  explicit ExpertOf(std::mt19937& rng) : w1(kInner, kHidden, rng), w3(kInner, kHidden, rng), w2(kHidden, kInner, rng) {}
  int64_t Bytes() const { return w1.w.Bytes() + w3.w.Bytes() + w2.w.Bytes(); }
};
using Expert = ExpertOf<Fp4Matrix>;

double g_read_gbps = 0;

// The probe's figure, or one measured now when a --benchmark_filter skipped
// the probe (a ratio against zero would print inf).
double ReadGbps() {
  if (g_read_gbps == 0) g_read_gbps = MeasureReadBandwidth(ReadProbeBytes(), 4);
  return g_read_gbps;
}

const ExpertOf<Fp8Matrix>& SharedExpert() {
  static const ExpertOf<Fp8Matrix> expert = [] {
    std::mt19937 rng(17);
    return ExpertOf<Fp8Matrix>(rng);
  }();
  return expert;
}

std::vector<Expert>& Experts() {
  static std::vector<Expert> experts = [] {
    std::mt19937 rng(7);
    std::vector<Expert> v;
    int64_t total = 0;
    while (total < 4 * LastLevelCacheBytes()) {
      v.emplace_back(rng);
      total += v.back().Bytes();
    }
    return v;
  }();
  return experts;
}

// The counters of `experts` expert runs in `seconds`.
void ReportPerExpert(benchmark::State& state, double experts, double seconds) {
  const double gbps = experts * static_cast<double>(Experts()[0].Bytes()) / seconds / 1e9;
  state.counters["us_per_expert"] = seconds / experts * 1e6;
  state.counters["GBps"] = gbps;
  state.counters["pct_of_read_bw"] = 100.0 * gbps / ReadGbps();
}

void Unfused(const Expert& e, const float* x, int64_t m, const float* route_weights, float* y) {
  std::vector<float> gate(m * kInner), up(m * kInner);
  MatMulSimd(e.w1.w, x, m, gate.data());
  MatMulSimd(e.w3.w, x, m, up.data());
  for (int64_t i = 0; i < m * kInner; ++i) {
    gate[i] = SwiGluActivation(gate[i], up[i], kSwiGluLimit, route_weights[i / kInner]);
  }
  MatMulSimd(e.w2.w, gate.data(), m, y);
}

void BM_Expert(benchmark::State& state, bool fused) {
  const int64_t m = state.range(0);
  std::vector<Expert>& experts = Experts();
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(m * kHidden), route_weights(m, 0.125f), y(m * kHidden);
  for (float& v : x) v = uniform(rng);
  size_t next = 0;
  double seconds = 0;
  for (auto _ : state) {
    const Expert& e = experts[next++ % experts.size()];
    const auto start = std::chrono::steady_clock::now();
    if (fused) {
      ExpertFfnSimd(e.w1.w, e.w3.w, e.w2.w, x.data(), m, route_weights.data(), kSwiGluLimit, y.data());
    } else {
      Unfused(e, x.data(), m, route_weights.data(), y.data());
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(elapsed);
    seconds += elapsed;
  }
  ReportPerExpert(state, static_cast<double>(state.iterations()), seconds);
}

// Six experts per iteration, kTopK different ones, as one group or one by
// one; with `shared`, the FP8 shared expert (one copy, as in a layer) last
// in the group, as Moe::Forward runs it.
constexpr int64_t kTopK = 6;

void BM_DecodeLayer(benchmark::State& state, bool grouped, bool shared) {
  const int64_t m = state.range(0);
  std::vector<Expert>& experts = Experts();
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> x(m * kHidden), route_weights(m, 0.125f);
  for (float& v : x) v = uniform(rng);
  std::vector<std::vector<float>> y(kTopK + 1, std::vector<float>(m * kHidden));
  size_t next = 0;
  double seconds = 0;
  for (auto _ : state) {
    std::vector<ExpertFfnJob> jobs;
    for (int64_t k = 0; k < kTopK; ++k) {
      const Expert& e = experts[next++ % experts.size()];
      jobs.push_back({&e.w1.w, &e.w3.w, &e.w2.w, x.data(), m, route_weights.data(), y[k].data()});
    }
    if (shared) {
      const ExpertOf<Fp8Matrix>& e = SharedExpert();
      jobs.push_back({&e.w1.w, &e.w3.w, &e.w2.w, x.data(), m, route_weights.data(), y[kTopK].data()});
    }
    const auto start = std::chrono::steady_clock::now();
    if (grouped) {
      ExpertFfnGroup(jobs, kSwiGluLimit);
    } else {
      for (const ExpertFfnJob& j : jobs) ExpertFfnSimd(*j.w1, *j.w3, *j.w2, j.x, m, j.route_weights, kSwiGluLimit, j.y);
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(elapsed);
    seconds += elapsed;
  }
  const double bytes_per_routed = static_cast<double>(experts[0].Bytes());
  ReportPerExpert(state, static_cast<double>(state.iterations()) * kTopK, seconds);
  if (shared) {  // the routed experts' counters, but bytes per second of the whole group
    const double bytes = static_cast<double>(state.iterations()) *
                         (kTopK * bytes_per_routed + static_cast<double>(SharedExpert().Bytes()));
    state.counters["GBps"] = bytes / seconds / 1e9;
    state.counters["pct_of_read_bw"] = 100.0 * bytes / seconds / 1e9 / ReadGbps();
    state.counters["us_per_layer"] = seconds / static_cast<double>(state.iterations()) * 1e6;
  }
}

void BM_Bf16Decode(benchmark::State& state) {
  constexpr int64_t kPanelRows = 256;
  std::vector<Expert>& experts = Experts();
  std::vector<uint16_t> panel(kPanelRows * kHidden);
  size_t next = 0;
  for (auto _ : state) {
    const WeightMatrix& w = experts[next++ % experts.size()].w1.w;
    for (int64_t r = 0; r < w.rows; r += kPanelRows) DecodeRowsBf16(w, r, std::min(w.rows, r + kPanelRows), panel.data());
  }
  state.counters["Gweights_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kInner * kHidden / 1e9, benchmark::Counter::kIsRate);
}

void BM_ReadProbe(benchmark::State& state) {
  for (auto _ : state) g_read_gbps = MeasureReadBandwidth(ReadProbeBytes(), 4);
  state.counters["read_GBps"] = g_read_gbps;
}

}  // namespace
}  // namespace dsv4

int main(int argc, char** argv) {
  using namespace dsv4;
  int threads = 0, out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  SetThreadCount(threads);
  SetMatMulKernels(MatMulImpl::kSimd);  // ExpertFfnGroup runs the active kernels
  benchmark::Initialize(&argc, argv);
  benchmark::RegisterBenchmark("probe/read_bandwidth", BM_ReadProbe)->Iterations(1)->UseRealTime();
  for (const int64_t m : {1, 4, 16, 128}) {
    for (const bool fused : {true, false}) {
      const std::string name = std::string("expert/fp4/") + (fused ? "fused" : "unfused") + "/M" + std::to_string(m);
      benchmark::RegisterBenchmark(name.c_str(), BM_Expert, fused)
          ->Arg(m)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const int64_t m : {1, 4}) {
    for (const bool grouped : {true, false}) {
      const std::string name =
          std::string("decode_layer/6x_fp4/") + (grouped ? "grouped" : "one_by_one") + "/M" + std::to_string(m);
      benchmark::RegisterBenchmark(name.c_str(), BM_DecodeLayer, grouped, false)
          ->Arg(m)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
    const std::string name = "decode_layer/6x_fp4+fp8_shared/grouped/M" + std::to_string(m);
    benchmark::RegisterBenchmark(name.c_str(), BM_DecodeLayer, true, true)
        ->Arg(m)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("bf16_decode/fp4/2048x4096", BM_Bf16Decode)->Unit(benchmark::kMicrosecond);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
