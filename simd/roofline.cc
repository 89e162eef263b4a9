#include "simd/roofline.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

// The probe loops are compiled for every target, like the kernels, so the
// FMA peak is the peak of the widest vectors the CPU runs.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/roofline.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace dsv4 {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Sum of p[0, n), n a multiple of 4 vectors, read as four streams (the
// quarters of the range) in lockstep, each prefetched into L2 4 KiB ahead:
// how the matvecs read their rows. A single plain stream leaves DRAM
// parallelism unused (the FP8/BF16 matvecs outran it by 10-30 %). Four
// independent chains, so the adds never wait on each other.
float SumOfFloats(const float* HWY_RESTRICT p, int64_t n) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const int64_t quarter = n / 4 / lanes * lanes;
  const float* HWY_RESTRICT q[4] = {p, p + quarter, p + 2 * quarter, p + 3 * quarter};
  auto s0 = hn::Zero(df), s1 = hn::Zero(df), s2 = hn::Zero(df), s3 = hn::Zero(df);
  for (int64_t i = 0; i < quarter; i += lanes) {
    if (i % 16 == 0) {
      for (const float* stream : q) __builtin_prefetch(stream + i + 1024, 0, 2);
    }
    s0 = hn::Add(s0, hn::Load(df, q[0] + i));
    s1 = hn::Add(s1, hn::Load(df, q[1] + i));
    s2 = hn::Add(s2, hn::Load(df, q[2] + i));
    s3 = hn::Add(s3, hn::Load(df, q[3] + i));
  }
  float total = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3))));
  for (int64_t i = 4 * quarter; i < n; ++i) total += p[i];
  return total;
}

// `iterations` rounds of 12 independent FMA chains (more than latency x
// issue width on current x86 cores), seeded differently so the compiler
// cannot merge them. Returns a value that depends on every chain.
float FmaChains(int64_t iterations, float seed) {
  const hn::ScalableTag<float> df;
  const auto mul = hn::Set(df, 0.9999999f), add = hn::Set(df, 1e-7f);
  auto c0 = hn::Set(df, seed + 0), c1 = hn::Set(df, seed + 1), c2 = hn::Set(df, seed + 2);
  auto c3 = hn::Set(df, seed + 3), c4 = hn::Set(df, seed + 4), c5 = hn::Set(df, seed + 5);
  auto c6 = hn::Set(df, seed + 6), c7 = hn::Set(df, seed + 7), c8 = hn::Set(df, seed + 8);
  auto c9 = hn::Set(df, seed + 9), c10 = hn::Set(df, seed + 10), c11 = hn::Set(df, seed + 11);
  for (int64_t i = 0; i < iterations; ++i) {
    c0 = hn::MulAdd(c0, mul, add);
    c1 = hn::MulAdd(c1, mul, add);
    c2 = hn::MulAdd(c2, mul, add);
    c3 = hn::MulAdd(c3, mul, add);
    c4 = hn::MulAdd(c4, mul, add);
    c5 = hn::MulAdd(c5, mul, add);
    c6 = hn::MulAdd(c6, mul, add);
    c7 = hn::MulAdd(c7, mul, add);
    c8 = hn::MulAdd(c8, mul, add);
    c9 = hn::MulAdd(c9, mul, add);
    c10 = hn::MulAdd(c10, mul, add);
    c11 = hn::MulAdd(c11, mul, add);
  }
  const auto sum = hn::Add(hn::Add(hn::Add(hn::Add(c0, c1), hn::Add(c2, c3)), hn::Add(hn::Add(c4, c5), hn::Add(c6, c7))),
                           hn::Add(hn::Add(c8, c9), hn::Add(c10, c11)));
  return hn::GetLane(hn::SumOfLanes(df, sum));
}

int64_t FmaFlopsPerIteration() { return 12 * 2 * static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>())); }

}  // namespace HWY_NAMESPACE
}  // namespace dsv4
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "hwy/aligned_allocator.h"
#include "simd/matmul.h"
#include "simd/matrix_engine.h"
#include "simd/threads.h"

namespace dsv4 {

HWY_EXPORT(SumOfFloats);
HWY_EXPORT(FmaChains);
HWY_EXPORT(FmaFlopsPerIteration);

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Keeps the probes' results alive.
volatile float g_sink;

// xorshift64*: fast enough to fill hundreds of megabytes of weights.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed) : state_(seed | 1) {}
  uint64_t Next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  void Fill(uint8_t* p, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = Next();
      std::memcpy(p + i, &v, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<uint8_t>(Next());
  }

 private:
  uint64_t state_;
};

}  // namespace

std::string CpuModelName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  const std::string key = "model name";
  for (std::string line; std::getline(cpuinfo, line);) {
    const size_t colon = line.find(':');
    if (line.compare(0, key.size(), key) != 0 || colon == std::string::npos) continue;
    const size_t start = line.find_first_not_of(" \t", colon + 1);
    if (start != std::string::npos) return line.substr(start);
  }
  return "unknown CPU";
}

// sysfs first: glibc's sysconf can be far off in virtual machines (320 MiB
// of L3 reported for a 32 MiB one).
int64_t LastLevelCacheBytes() {
  int64_t best_level = 0, bytes = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), type_file(dir + "type"), size_file(dir + "size");
    int64_t level = 0, size = 0;
    std::string type, unit;
    if (!(level_file >> level) || !(type_file >> type) || !(size_file >> size)) continue;
    if (type == "Instruction") continue;
    size_file >> unit;  // "32768K" parses as 32768 then "K"
    if (!unit.empty() && (unit[0] == 'K' || unit[0] == 'k')) size <<= 10;
    if (!unit.empty() && (unit[0] == 'M' || unit[0] == 'm')) size <<= 20;
    if (level > best_level) {
      best_level = level;
      bytes = size;
    }
  }
  if (bytes > 0) return bytes;
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  return l3 > 0 ? l3 : int64_t{32} << 20;
}

int64_t ReadProbeBytes() { return std::max<int64_t>(16 * LastLevelCacheBytes(), int64_t{512} << 20); }

ReadBandwidthProbe::ReadBandwidthProbe(int64_t bytes) : threads_(omp_get_max_threads()) {
  // Whole 256-byte chunks per thread: every target's 4-vector step divides it.
  floats_per_thread_ = std::max<int64_t>(64, bytes / 4 / threads_ / 64 * 64);
  buffer_ = hwy::AllocateAligned<float>(floats_per_thread_ * threads_);
#pragma omp parallel num_threads(threads_)
  {
    // First touch by the thread that reads it (NUMA placement).
    float* mine = buffer_.get() + floats_per_thread_ * omp_get_thread_num();
    std::fill(mine, mine + floats_per_thread_, 1.0f);
  }
}

double ReadBandwidthProbe::Run() {
  const auto sum = HWY_DYNAMIC_DISPATCH(SumOfFloats);
  float total = 0;
  const Clock::time_point start = Clock::now();
#pragma omp parallel num_threads(threads_) reduction(+ : total)
  total += sum(buffer_.get() + floats_per_thread_ * omp_get_thread_num(), floats_per_thread_);
  const double seconds = SecondsSince(start);
  g_sink = total;
  return static_cast<double>(floats_per_thread_) * threads_ * sizeof(float) / seconds / 1e9;
}

double MeasureReadBandwidth(int64_t bytes, int repeats) {
  ReadBandwidthProbe probe(bytes);
  double best = 0;
  for (int i = 0; i < repeats; ++i) best = std::max(best, probe.Run());
  return best;
}

double MeasureFmaPeak(int repeats) {
  const int threads = omp_get_max_threads();
  const auto chains = HWY_DYNAMIC_DISPATCH(FmaChains);
  const int64_t flops_per_iteration = HWY_DYNAMIC_DISPATCH(FmaFlopsPerIteration)();
  const int64_t iterations = 20'000'000;  // 35-70 ms per thread at 3.5 GHz
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    float total = 0;
    const Clock::time_point start = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    total += chains(iterations, static_cast<float>(omp_get_thread_num()));
    best = std::min(best, SecondsSince(start));
    g_sink = total;
  }
  return static_cast<double>(flops_per_iteration) * iterations * threads / best / 1e9;
}

RooflineTracker::RooflineTracker() : read_probe_(ReadProbeBytes()) {
  best_.threads = omp_get_max_threads();
  for (int i = 0; i < 8; ++i) ReprobeRead();
  best_.fma_gflops = MeasureFmaPeak(5);
  ReprobeBf16();
}

void RooflineTracker::ReprobeRead() { best_.read_gbps = std::max(best_.read_gbps, read_probe_.Run()); }

void RooflineTracker::ReprobeFma() { best_.fma_gflops = std::max(best_.fma_gflops, MeasureFmaPeak(1)); }

void RooflineTracker::ReprobeBf16() {
  best_.bf16_gflops = std::max(best_.bf16_gflops, Bf16MatMulPeakGflops(512, 4096, 4096, 3));
}

const char* KernelKindName(KernelKind kind) {
  switch (kind) {
    case KernelKind::kMatVec:
      return "matvec";
    case KernelKind::kGemm:
      return "gemm";
    case KernelKind::kBf16Gemm:
      return "bf16gemm";
  }
  return "?";
}

const char* KernelFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kF32:
      return "f32";
    case WeightFormat::kBF16:
      return "bf16";
    case WeightFormat::kE4M3Blocked:
      return "fp8";
    case WeightFormat::kE2M1Grouped:
      return "fp4";
  }
  return "?";
}

std::vector<KernelCase> FlashKernelCases() {
  using F = WeightFormat;
  std::vector<KernelCase> cases = {
      {"expert.w1/w3", KernelKind::kMatVec, F::kE2M1Grouped, 1, 2048, 4096},
      {"expert.w2", KernelKind::kMatVec, F::kE2M1Grouped, 1, 4096, 2048},
      {"attn.wq_b", KernelKind::kMatVec, F::kE4M3Blocked, 1, 32768, 1024},
      {"attn.wo_b", KernelKind::kMatVec, F::kE4M3Blocked, 1, 4096, 8192},
      {"shared.w1/w3", KernelKind::kMatVec, F::kE4M3Blocked, 1, 2048, 4096},
      {"shared.w2", KernelKind::kMatVec, F::kE4M3Blocked, 1, 4096, 2048},
      {"head slice", KernelKind::kMatVec, F::kBF16, 1, 4096, 4096},
  };
  for (const int64_t m : {1, 4, 16, 64, 128, 512}) {
    cases.push_back({"expert.w1/w3", KernelKind::kGemm, F::kE2M1Grouped, m, 2048, 4096});
    cases.push_back({"shared.w1/w3", KernelKind::kGemm, F::kE4M3Blocked, m, 2048, 4096});
    cases.push_back({"head slice", KernelKind::kGemm, F::kBF16, m, 4096, 4096});
  }
  if (!Bf16MatrixUnit().empty()) {
    for (const int64_t m : {kBf16MinRows, int64_t{128}, int64_t{512}}) {
      cases.push_back({"expert.w1/w3", KernelKind::kBf16Gemm, F::kE2M1Grouped, m, 2048, 4096});
      cases.push_back({"shared.w1/w3", KernelKind::kBf16Gemm, F::kE4M3Blocked, m, 2048, 4096});
      cases.push_back({"head slice", KernelKind::kBf16Gemm, F::kBF16, m, 4096, 4096});
    }
  }
  return cases;
}

struct KernelWorkload::Buffers {
  std::vector<std::unique_ptr<uint8_t[]>> data;  // placed on NUMA nodes as the engine's weights are
  std::vector<std::vector<uint8_t>> scales;
  std::vector<WeightMatrix> matrices;
  std::vector<float> x, y;
};

KernelWorkload::KernelWorkload(const KernelCase& kernel_case, int64_t min_total_bytes)
    : case_(kernel_case), buffers_(std::make_unique<Buffers>()) {
  WeightMatrix shape;
  shape.format = case_.format;
  shape.rows = case_.n;
  shape.cols = case_.k;
  if (case_.format == WeightFormat::kE4M3Blocked) shape.block_rows = shape.block_cols = 128;
  if (case_.format == WeightFormat::kE2M1Grouped) shape.block_cols = 32;
  const int copies = static_cast<int>(std::max<int64_t>(1, (min_total_bytes + shape.Bytes() - 1) / shape.Bytes()));
  FastRandom random(0x5eed + case_.n * 31 + case_.k);
  for (int i = 0; i < copies; ++i) {
    int64_t data_bytes = 0, scale_bytes = 0;
    switch (case_.format) {
      case WeightFormat::kF32:
        data_bytes = case_.n * case_.k * 4;
        break;
      case WeightFormat::kBF16:
        data_bytes = case_.n * case_.k * 2;
        break;
      case WeightFormat::kE4M3Blocked:
        data_bytes = case_.n * case_.k;
        scale_bytes = (case_.n + 127) / 128 * shape.ScaleCols();
        break;
      case WeightFormat::kE2M1Grouped:
        data_bytes = case_.n * case_.k / 2;
        scale_bytes = case_.n * shape.ScaleCols();
        break;
    }
    // Not value-initialized: placed before anything touches it.
    std::unique_ptr<uint8_t[]> data(new uint8_t[data_bytes]);
    PlaceWeightMemory(data.get(), static_cast<uint64_t>(data_bytes));
    std::vector<uint8_t> scales(scale_bytes);
    random.Fill(data.get(), data_bytes);
    if (case_.format == WeightFormat::kE4M3Blocked) {
      for (int64_t i = 0; i < data_bytes; ++i) {
        uint8_t& code = data[i];
        code = (code & 0x7F) == 0x7F ? code - 1 : code;  // no NaN codes
      }
    } else if (case_.format == WeightFormat::kBF16 || case_.format == WeightFormat::kF32) {
      // Finite normal values of magnitude about 2^-8..1, like real weights.
      const int bytes_per_value = case_.format == WeightFormat::kBF16 ? 2 : 4;
      for (int64_t v = 0; v < data_bytes; v += bytes_per_value) {
        uint8_t& top = data[v + bytes_per_value - 1];
        uint8_t& next = data[v + bytes_per_value - 2];
        const int exponent = 119 + (top & 7);
        top = static_cast<uint8_t>((top & 0x80) | (exponent >> 1));
        next = static_cast<uint8_t>((next & 0x7F) | ((exponent & 1) << 7));
      }
    }
    for (uint8_t& e : scales) e = static_cast<uint8_t>(112 + e % 12);  // 2^-15 .. 2^-4
    WeightMatrix w = shape;
    w.data = data.get();
    w.scales = scales.empty() ? nullptr : scales.data();
    buffers_->data.push_back(std::move(data));
    buffers_->scales.push_back(std::move(scales));
    buffers_->matrices.push_back(w);
  }
  buffers_->x.resize(case_.m * case_.k);
  for (float& v : buffers_->x) v = static_cast<float>(static_cast<int64_t>(random.Next() % 2001) - 1000) * 1e-3f;
  buffers_->y.resize(case_.m * case_.n);
}

KernelWorkload::~KernelWorkload() = default;

void KernelWorkload::Run() {
  const auto matmul = case_.kind == KernelKind::kBf16Gemm ? MatMulBf16 : MatMulSimd;
  matmul(buffers_->matrices[next_], buffers_->x.data(), case_.m, buffers_->y.data());
  next_ = (next_ + 1) % copies();
}

int KernelWorkload::copies() const { return static_cast<int>(buffers_->matrices.size()); }
int64_t KernelWorkload::weight_bytes() const { return buffers_->matrices[0].Bytes(); }
double KernelWorkload::flops() const { return 2.0 * case_.m * case_.n * case_.k; }

KernelMeasurement MeasureKernel(const KernelCase& kernel_case, int windows, double window_seconds,
                                int64_t workload_bytes) {
  KernelWorkload work(kernel_case, workload_bytes > 0 ? workload_bytes
                                                      : std::max<int64_t>(4 * LastLevelCacheBytes(), int64_t{64} << 20));
  for (int i = 0; i < work.copies(); ++i) work.Run();  // page faults, thread start-up
  double best = std::numeric_limits<double>::infinity();
  for (int w = 0; w < windows; ++w) {
    int64_t calls = 0;
    const Clock::time_point start = Clock::now();
    double elapsed = 0;
    do {
      work.Run();
      ++calls;
      elapsed = SecondsSince(start);
    } while (elapsed < window_seconds);
    best = std::min(best, elapsed / calls);
  }
  KernelMeasurement result;
  result.kernel_case = kernel_case;
  result.seconds = best;
  result.gbps = work.weight_bytes() / best / 1e9;
  result.gflops = work.flops() / best / 1e9;
  return result;
}

DecodeKernelRates MeasureDecodeKernelRates(int64_t workload_bytes) {
  using F = WeightFormat;
  const auto gbps = [&](F format, int64_t n, int64_t k) {
    return MeasureKernel({"decode", KernelKind::kMatVec, format, 1, n, k}, 3, 0.1, workload_bytes).gbps;
  };
  DecodeKernelRates rates;
  rates.fp4_gbps = gbps(F::kE2M1Grouped, 2048, 4096);  // a routed expert's w1/w3
  rates.fp8_gbps = gbps(F::kE4M3Blocked, 4096, 8192);  // attention's wo_b
  rates.bf16_gbps = gbps(F::kBF16, 4096, 4096);        // a slice of the head
  return rates;
}

double RoofFraction(const KernelMeasurement& measurement, const Roofline& roofline) {
  switch (measurement.kernel_case.kind) {
    case KernelKind::kMatVec:
      return measurement.gbps / roofline.read_gbps;
    case KernelKind::kGemm:
      return measurement.gflops / roofline.fma_gflops;
    case KernelKind::kBf16Gemm:
      return roofline.bf16_gflops > 0 ? measurement.gflops / roofline.bf16_gflops : 0;
  }
  return 0;
}

}  // namespace dsv4
#endif  // HWY_ONCE
