// What this machine can do (DRAM read bandwidth, f32 FMA peak) and how close
// the MatMul kernels get to it at DeepSeek-V4-Flash shapes. Used by
// `dsv4 bench --kernels` and benchmarks/kernels_benchmark.cc.
//
// Every figure is the best of several timed windows: the machines this runs
// on are shared and noisy, and the best window is the one least disturbed.
// Kernel figures are meant to be read against the probes of the same run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "simd/weight_matrix.h"

namespace dsv4 {

// Bytes of the last-level cache (sysfs, else sysconf, else 32 MiB).
int64_t LastLevelCacheBytes();

// The CPU's model name as /proc/cpuinfo gives it ("unknown CPU" without one),
// recorded with every benchmark figure.
std::string CpuModelName();

// DRAM read bandwidth of the current OpenMP team: every thread streams its
// share of a buffer many times the size of the last-level cache.
class ReadBandwidthProbe {
 public:
  // Allocates `bytes` and touches them from the threads that will read them.
  explicit ReadBandwidthProbe(int64_t bytes);

  // One pass over the buffer; GB/s (1e9 bytes/s).
  double Run();

 private:
  int threads_;
  int64_t floats_per_thread_;
  hwy::AlignedFreeUniquePtr<float[]> buffer_;
};

// The probe's best of `repeats` passes over `bytes`, in GB/s.
double MeasureReadBandwidth(int64_t bytes, int repeats);

// Bytes the read probes stream: max(16 x last-level cache, 512 MiB).
int64_t ReadProbeBytes();

// f32 FMA peak in GFLOP/s of the current OpenMP team, on the best Highway
// target this CPU runs.
double MeasureFmaPeak(int repeats);

struct Roofline {
  int threads = 0;
  double read_gbps = 0;
  double fma_gflops = 0;
  // oneDNN's bf16 matmul on 512 x 4096 x 4096 in its own weight layout: the
  // peak of the matrix engine (0 without one, simd/matrix_engine.h).
  double bf16_gflops = 0;
};

// Keeps re-probing between kernel measurements and the best figures so far:
// a roof measured while a neighbour briefly loaded the machine would make
// every fraction against it too high.
class RooflineTracker {
 public:
  RooflineTracker();  // the initial probes (8 read passes, 5 FMA runs)
  void ReprobeRead();  // one more read pass
  void ReprobeFma();   // one more FMA run
  void ReprobeBf16();  // one more bf16 matmul run
  const Roofline& best() const { return best_; }

 private:
  ReadBandwidthProbe read_probe_;
  Roofline best_;
};

// kBf16Gemm: MatMulBf16 (Numerics::kFast's GEMMs), weights decoded to bf16
// in every call as in a forward pass.
enum class KernelKind { kMatVec, kGemm, kBf16Gemm };

// One benchmarked product: y[M][N] = x[M][K] * W[N][K]^T.
struct KernelCase {
  std::string name;
  KernelKind kind;
  WeightFormat format;
  int64_t m, n, k;
};

const char* KernelKindName(KernelKind kind);     // "matvec" | "gemm" | "bf16gemm"
const char* KernelFormatName(WeightFormat format);  // "fp4" | "fp8" | "bf16" | "f32"

// The DRAM-sized DeepSeek-V4-Flash shapes of issue 4: matvec of the FP4
// routed-expert and FP8 attention/shared-expert matrices and a BF16 head
// slice, and GEMM at M = 1, 4, 16, 64, 128, 512 for each format; with a
// bf16 matrix unit, the bf16 GEMM at M = 32, 128, 512 for each format.
std::vector<KernelCase> FlashKernelCases();

// Random weights of one case (realistic codes and scales) in as many copies as
// it takes to exceed `min_total_bytes`, so that cycling through them reads
// DRAM rather than cache, plus input and output buffers.
class KernelWorkload {
 public:
  KernelWorkload(const KernelCase& kernel_case, int64_t min_total_bytes);
  ~KernelWorkload();
  KernelWorkload(const KernelWorkload&) = delete;
  KernelWorkload& operator=(const KernelWorkload&) = delete;

  // One MatMul on the next copy of the weights.
  void Run();
  int copies() const;
  int64_t weight_bytes() const;  // what one Run reads from the weights
  double flops() const;          // 2 * M * N * K

 private:
  struct Buffers;
  KernelCase case_;
  std::unique_ptr<Buffers> buffers_;
  int next_ = 0;
};

struct KernelMeasurement {
  KernelCase kernel_case;
  double seconds = 0;  // per call
  double gbps = 0;     // weight bytes per second / 1e9
  double gflops = 0;
};

// gbps / read_gbps for matvec, gflops / fma_gflops for GEMM, gflops /
// bf16_gflops for the bf16 GEMM.
double RoofFraction(const KernelMeasurement& measurement, const Roofline& roofline);

// Times Run() in windows of at least `window_seconds` each and keeps the best,
// over weights of at least `workload_bytes` (0: 4 x the last-level cache).
KernelMeasurement MeasureKernel(const KernelCase& kernel_case, int windows, double window_seconds,
                                int64_t workload_bytes = 0);

// GB/s of weights the decode matvecs reach on this machine, one per format a
// decoded token reads: FP4 routed experts, FP8 dense weights, the BF16 head.
// What the memory plan's prediction divides bytes by (a kernel slower than
// DRAM bounds decode below the read bandwidth).
struct DecodeKernelRates {
  double fp4_gbps = 0, fp8_gbps = 0, bf16_gbps = 0;
};
// Quick: three windows of 0.1 s per format over `workload_bytes` each.
DecodeKernelRates MeasureDecodeKernelRates(int64_t workload_bytes);

}  // namespace dsv4
