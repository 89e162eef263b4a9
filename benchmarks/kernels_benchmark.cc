// MatMul kernels at DeepSeek-V4-Flash shapes against this machine's roofline,
// in one run: a DRAM read-bandwidth probe and an f32 FMA-peak probe first,
// then every matvec (weights cycled through copies larger than the last-level
// cache, so the figures are DRAM figures) and GEMM at M = 1 .. 512.
//
// Counters: GBps (weight bytes read per second), GFLOPs, and pct_of_roof:
// % of the probed read bandwidth for matvec, % of the probed FMA peak for
// GEMM. The probes keep their best repetition, as dsv4 bench --kernels does.
// matvec_hot/...: the same matvecs on one cache-resident copy of the weights
// (the decode ceiling, still against the DRAM probe). interleaved/...: median
// and best of 15 (probe, kernel window) pairs, for loaded machines.
//
//   kernels_benchmark [--threads=N] [--no_avx512] [Google Benchmark flags]
// (default: one thread per physical core, pinned; the best Highway target the
// CPU runs, or AVX2 with --no_avx512).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "simd/matmul.h"
#include "simd/roofline.h"
#include "simd/threads.h"

namespace dsv4 {
namespace {

Roofline g_roofline;

ReadBandwidthProbe& SharedReadProbe() {
  static ReadBandwidthProbe probe(ReadProbeBytes());
  return probe;
}

// Each probe keeps its best repetition.
constexpr int kReadProbeRuns = 8, kFmaProbeRuns = 5;

double ProbeReadRoof(int runs) {
  double gbps = 0;
  for (int i = 0; i < runs; ++i) gbps = std::max(gbps, SharedReadProbe().Run());
  g_roofline.read_gbps = std::max(g_roofline.read_gbps, gbps);
  return gbps;
}

double ProbeFmaRoof(int runs) {
  const double gflops = MeasureFmaPeak(runs);
  g_roofline.fma_gflops = std::max(g_roofline.fma_gflops, gflops);
  return gflops;
}

void BM_ReadBandwidthProbe(benchmark::State& state) {
  double gbps = 0;
  for (auto _ : state) gbps = std::max(gbps, ProbeReadRoof(1));
  state.counters["GBps"] = gbps;
}

void BM_FmaPeakProbe(benchmark::State& state) {
  double gflops = 0;
  for (auto _ : state) gflops = std::max(gflops, ProbeFmaRoof(1));
  state.counters["GFLOPs"] = gflops;
}

// The probes' best figures, or one measurement now when a
// --benchmark_filter skipped a probe (a ratio against zero would print inf).
double ReadRoof() { return g_roofline.read_gbps > 0 ? g_roofline.read_gbps : ProbeReadRoof(kReadProbeRuns); }
double FmaRoof() { return g_roofline.fma_gflops > 0 ? g_roofline.fma_gflops : ProbeFmaRoof(kFmaProbeRuns); }

// One workload alive at a time: a case's copies take hundreds of megabytes.
// Hot workloads have a single copy, which stays in the last-level cache: they
// measure what the decode arithmetic can do without waiting for DRAM.
KernelWorkload& WorkloadFor(const KernelCase& kernel_case, bool hot) {
  static std::unique_ptr<KernelWorkload> workload;
  static const KernelCase* current = nullptr;
  static bool current_hot = false;
  if (current != &kernel_case || current_hot != hot) {
    workload.reset();
    const int64_t min_bytes = hot ? 0 : std::max<int64_t>(4 * LastLevelCacheBytes(), int64_t{64} << 20);
    workload = std::make_unique<KernelWorkload>(kernel_case, min_bytes);
    for (int i = 0; i < workload->copies(); ++i) workload->Run();
    current = &kernel_case;
    current_hot = hot;
  }
  return *workload;
}

// Timed by hand (UseManualTime) so that the counters are plain figures.
void BM_Kernel(benchmark::State& state, const KernelCase* kernel_case, bool hot) {
  KernelWorkload& work = WorkloadFor(*kernel_case, hot);
  double seconds = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    work.Run();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(elapsed);
    seconds += elapsed;
  }
  const double calls = static_cast<double>(state.iterations());
  const double gbps = calls * work.weight_bytes() / seconds / 1e9, gflops = calls * work.flops() / seconds / 1e9;
  state.counters["GBps"] = gbps;
  state.counters["GFLOPs"] = gflops;
  state.counters["pct_of_roof"] =
      100.0 * (kernel_case->kind == KernelKind::kMatVec ? gbps / ReadRoof() : gflops / FmaRoof());
}

struct Flags {
  int threads = 0;  // 0: one per physical core
  bool no_avx512 = false;
};

// For loaded machines: each iteration probes the roof once (one read pass or
// one FMA run), then runs the kernel for a 50 ms window right after, and
// counts that window's ratio. The median ratio is robust to the load
// changing during the run, which the best-of figures above are not.
void BM_Interleaved(benchmark::State& state, const KernelCase* kernel_case) {
  KernelWorkload& work = WorkloadFor(*kernel_case, /*hot=*/false);
  const bool matvec = kernel_case->kind == KernelKind::kMatVec;
  std::vector<double> ratios;
  for (auto _ : state) {
    const double roof = matvec ? SharedReadProbe().Run() : MeasureFmaPeak(1);
    const auto start = std::chrono::steady_clock::now();
    int64_t calls = 0;
    double elapsed = 0;
    do {
      work.Run();
      ++calls;
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (elapsed < 0.05);
    const double achieved = (matvec ? work.weight_bytes() : work.flops()) * calls / elapsed / 1e9;
    ratios.push_back(achieved / roof);
  }
  std::sort(ratios.begin(), ratios.end());
  state.counters["pct_of_roof_median"] = 100.0 * ratios[ratios.size() / 2];
  state.counters["pct_of_roof_max"] = 100.0 * ratios.back();
}

// Removes this program's own flags from argv.
Flags TakeFlags(int* argc, char** argv) {
  Flags flags;
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      flags.threads = std::atoi(argv[i] + 10);
    } else if (std::strcmp(argv[i], "--no_avx512") == 0) {
      flags.no_avx512 = true;
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return flags;
}

}  // namespace
}  // namespace dsv4

int main(int argc, char** argv) {
  using namespace dsv4;
  const Flags flags = TakeFlags(&argc, argv);
  if (flags.no_avx512) hwy::DisableTargets(HWY_AVX3 | HWY_AVX3_DL);
  g_roofline.threads = SetThreadCount(flags.threads).threads;
  benchmark::Initialize(&argc, argv);
  benchmark::RegisterBenchmark("probe/read_bandwidth", BM_ReadBandwidthProbe)->Iterations(kReadProbeRuns)->UseRealTime();
  benchmark::RegisterBenchmark("probe/fma_peak", BM_FmaPeakProbe)->Iterations(kFmaProbeRuns)->UseRealTime();
  static const std::vector<KernelCase> cases = FlashKernelCases();
  for (const KernelCase& c : cases) {
    const std::string name = std::string(KernelKindName(c.kind)) + "/" + KernelFormatName(c.format) + "/" + c.name +
                             "/M" + std::to_string(c.m) + "_N" + std::to_string(c.n) + "_K" + std::to_string(c.k);
    benchmark::RegisterBenchmark(name.c_str(), BM_Kernel, &c, /*hot=*/false)
        ->UseManualTime()
        ->Unit(c.kind == KernelKind::kMatVec ? benchmark::kMicrosecond : benchmark::kMillisecond);
  }
  // The decode ceilings: the same matvecs with cache-resident weights, still
  // as % of the DRAM read bandwidth. A format whose hot figure is below a
  // target cannot reach it from DRAM either.
  for (const KernelCase& c : cases) {
    const int bits = c.format == WeightFormat::kE2M1Grouped ? 4 : c.format == WeightFormat::kE4M3Blocked ? 8 : 16;
    if (c.kind != KernelKind::kMatVec || c.n * c.k * bits / 8 > LastLevelCacheBytes() / 2) continue;
    const std::string name = std::string("matvec_hot/") + KernelFormatName(c.format) + "/" + c.name + "/M1_N" +
                             std::to_string(c.n) + "_K" + std::to_string(c.k);
    benchmark::RegisterBenchmark(name.c_str(), BM_Kernel, &c, /*hot=*/true)->UseManualTime()->Unit(benchmark::kMicrosecond);
  }
  for (const KernelCase& c : cases) {
    if (c.kind == KernelKind::kGemm && c.m < 128) continue;
    const std::string name = std::string("interleaved/") + KernelKindName(c.kind) + "/" + KernelFormatName(c.format) +
                             "/" + c.name + "/M" + std::to_string(c.m) + "_N" + std::to_string(c.n) + "_K" +
                             std::to_string(c.k);
    benchmark::RegisterBenchmark(name.c_str(), BM_Interleaved, &c)->Iterations(15)->UseRealTime();
  }
  std::fprintf(stderr, "kernels_benchmark: %d threads, %s kernels\n", g_roofline.threads, MatMulTargetName());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
