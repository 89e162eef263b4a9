// dsv4 bench --kernels: this machine's roofline (DRAM read bandwidth, f32 FMA
// peak, bf16 matrix-engine peak) and the throughput of every MatMul kernel at
// DeepSeek-V4-Flash shapes as a fraction of it. `bench -m DIR`, the model
// benchmark, is cli/bench_model.cc.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/arguments.h"
#include "cli/bench_model.h"
#include "cli/command.h"
#include "cli/thread_options.h"
#include "loader/error.h"
#include "simd/matmul.h"
#include "simd/matrix_engine.h"
#include "simd/roofline.h"

namespace dsv4::cli {
namespace {

double Round(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

void PrintJson(const Roofline& roofline, const std::string& numa, const std::vector<KernelMeasurement>& results) {
  nlohmann::ordered_json out;
  out["machine"] = {{"cpu_model", CpuModelName()},
                    {"simd_target", MatMulTargetName()},
                    {"threads", roofline.threads},
                    {"numa", numa},
                    {"read_GBps", Round(roofline.read_gbps, 2)},
                    {"fma_GFLOPs", Round(roofline.fma_gflops, 1)},
                    {"bf16_unit", Bf16MatrixUnit()},
                    {"bf16_GFLOPs", Round(roofline.bf16_gflops, 1)}};
  out["kernels"] = nlohmann::ordered_json::array();
  for (const KernelMeasurement& r : results) {
    const KernelCase& c = r.kernel_case;
    out["kernels"].push_back({{"name", c.name},
                              {"kind", KernelKindName(c.kind)},
                              {"format", KernelFormatName(c.format)},
                              {"M", c.m},
                              {"N", c.n},
                              {"K", c.k},
                              {"GBps", Round(r.gbps, 2)},
                              {"GFLOPs", Round(r.gflops, 2)},
                              {"roof_fraction", Round(RoofFraction(r, roofline), 4)}});
  }
  std::printf("%s\n", out.dump().c_str());
}

void PrintTable(const Roofline& roofline, const std::string& numa, const std::vector<KernelMeasurement>& results) {
  std::printf("machine: %s, %d threads, %s kernels, DRAM read %.1f GB/s, f32 FMA peak %.1f GFLOP/s",
              CpuModelName().c_str(), roofline.threads, MatMulTargetName(), roofline.read_gbps, roofline.fma_gflops);
  if (roofline.bf16_gflops > 0) {
    std::printf(", bf16 peak %.1f GFLOP/s (%s, oneDNN %s)", roofline.bf16_gflops, Bf16MatrixUnit().c_str(),
                Bf16MatMulImplementation().c_str());
  }
  std::printf("\n%s\n\n", numa.c_str());
  std::printf("%-14s %-7s %-6s %5s %6s %6s %9s %9s %8s\n", "kernel", "kind", "format", "M", "N", "K", "GB/s",
              "GFLOP/s", "of roof");
  for (const KernelMeasurement& r : results) {
    const KernelCase& c = r.kernel_case;
    std::printf("%-14s %-7s %-6s %5lld %6lld %6lld %9.2f %9.2f %7.1f%%\n", c.name.c_str(), KernelKindName(c.kind),
                KernelFormatName(c.format), static_cast<long long>(c.m), static_cast<long long>(c.n),
                static_cast<long long>(c.k), r.gbps, r.gflops, 100.0 * RoofFraction(r, roofline));
  }
  std::printf(
      "\nmatvec: %% of DRAM read bandwidth (weight bytes); gemm: %% of the f32 FMA peak; bf16gemm (--numerics fast, "
      "weights decoded to bf16 in each call): %% of the bf16 peak (oneDNN's best on 512 x 4096 x 4096).\n");
}

int BenchKernels(const TeamPlacement& placement, bool json) {
  const std::string numa = placement.Summary(Topology::OfThisProcess());
  std::fprintf(stderr, "bench: measuring the roofline with %d threads (%s kernels)...\n", placement.threads,
               MatMulTargetName());
  RooflineTracker tracker;  // re-probed before every kernel, best figures kept
  std::fprintf(stderr, "bench: DRAM read %.1f GB/s, FMA peak %.1f GFLOP/s\n", tracker.best().read_gbps,
               tracker.best().fma_gflops);
  const std::vector<KernelCase> cases = FlashKernelCases();
  std::vector<KernelMeasurement> results;
  for (size_t i = 0; i < cases.size(); ++i) {
    const KernelCase& c = cases[i];
    std::fprintf(stderr, "bench: [%zu/%zu] %s %s %s M=%lld\n", i + 1, cases.size(), c.name.c_str(),
                 KernelKindName(c.kind), KernelFormatName(c.format), static_cast<long long>(c.m));
    switch (c.kind) {
      case KernelKind::kMatVec:
        tracker.ReprobeRead();
        break;
      case KernelKind::kGemm:
        tracker.ReprobeFma();
        break;
      case KernelKind::kBf16Gemm:
        tracker.ReprobeBf16();
        break;
    }
    results.push_back(MeasureKernel(c, 5, 0.1));
  }
  if (json) {
    PrintJson(tracker.best(), numa, results);
  } else {
    PrintTable(tracker.best(), numa, results);
  }
  return 0;
}

int RunBench(int argc, char** argv) {
  // Two modes: `bench -m DIR` (the model, cli/bench_model.cc) and `bench --kernels`.
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-m" || arg == "--model" || arg.rfind("--model=", 0) == 0) return RunModelBench(argc, argv);
  }
  cxxopts::Options options("dsv4 bench", "Measure this machine's roofline and the kernels against it.");
  options.add_options()
      ("kernels", "Benchmark the MatMul kernels at DeepSeek-V4-Flash shapes")
      ("json", "Write one JSON object to stdout instead of a table");
  AddThreadOptions(options);
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  if (!args.count("kernels")) throw Error("nothing to benchmark: give --kernels");
  return BenchKernels(StartThreadTeam(args), args.count("json") > 0);
}

const RegisterCommand kRegister("bench", "Measure the kernels (--kernels) or a model (-m DIR) against this machine", &RunBench);

}  // namespace
}  // namespace dsv4::cli
