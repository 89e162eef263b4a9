#include "simd/matmul.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

// Compile simd/matmul-inl.h once per target in HWY_TARGETS (AVX2 and AVX-512
// with the kernel flags) and pick the best the CPU supports at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/matmul.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "simd/matmul-inl.h"

#if HWY_ONCE
#include "hwy/aligned_allocator.h"
#include "simd/number_formats.h"

namespace dsv4 {

HWY_EXPORT(GetMatMulKernels);

namespace {

void CheckArguments(const WeightMatrix& w, const float* x, int64_t batch, const float* y) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("MatMul: " + what); };
  if (w.rows < 0 || w.cols < 0 || batch < 0) fail("negative shape");
  if (batch > 0 && w.cols > 0 && x == nullptr) fail("null input");
  if (batch > 0 && w.rows > 0 && y == nullptr) fail("null output");
  const bool has_elements = w.rows > 0 && w.cols > 0;
  if (has_elements && w.data == nullptr) fail("null weights");
  if (w.format == WeightFormat::kE4M3Blocked || w.format == WeightFormat::kE2M1Grouped) {
    if (w.block_rows < 1 || w.block_cols < 1) fail("scale block smaller than 1x1");
    if (has_elements && w.scales == nullptr) fail("null scales");
  }
  if (w.format == WeightFormat::kE2M1Grouped && w.cols % 2 != 0) fail("odd column count for packed E2M1");
}

// E4M3 tile scales as f32 (a few thousand per matrix at most).
std::vector<float> DecodeTileScales(const WeightMatrix& w) {
  if (w.format != WeightFormat::kE4M3Blocked) return {};
  const int64_t count = (w.rows + w.block_rows - 1) / w.block_rows * w.ScaleCols();
  std::vector<float> scales(count);
  for (int64_t i = 0; i < count; ++i) scales[i] = E8M0ToF32(w.scales[i]);
  return scales;
}

// Below about 2^18 multiply-adds (some 50 us) per thread, waking the team
// costs more than the split saves.
int TeamSize(const WeightMatrix& w, int64_t batch) {
  const double work = static_cast<double>(w.rows) * static_cast<double>(w.cols) * static_cast<double>(batch);
  const int64_t useful = static_cast<int64_t>(work / 262144.0) + 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), useful));
}

// Output rows of thread t of n: contiguous, in multiples of 16 rows so that
// register tiles and row pairs never straddle two threads.
void RowRange(int64_t rows, int t, int n, int64_t* begin, int64_t* end) {
  const int64_t per_thread = ((rows + n - 1) / n + 15) / 16 * 16;
  *begin = std::min(rows, per_thread * t);
  *end = std::min(rows, *begin + per_thread);
}

}  // namespace

const char* MatMulTargetName() { return HWY_DYNAMIC_DISPATCH(GetMatMulKernels)().target; }

void MatMulSimd(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  CheckArguments(w, x, batch, y);
  if (batch == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    std::fill(y, y + batch * w.rows, 0.0f);
    return;
  }
  // All function pointers come from one target: the packing must match the
  // kernels.
  const MatMulKernels kernels = HWY_DYNAMIC_DISPATCH(GetMatMulKernels)();
  const std::vector<float> tile_scales = DecodeTileScales(w);
  MatMulJob job;
  job.w = &w;
  job.x = x;
  job.batch = batch;
  job.tile_scales = tile_scales.data();
  job.y = y;
  hwy::AlignedFreeUniquePtr<float[]> packed = hwy::AllocateAligned<float>(kernels.plan_packing(&job));
  job.packed = packed.get();
#pragma omp parallel num_threads(TeamSize(w, batch))
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    kernels.pack_input(job, batch * t / n, batch * (t + 1) / n);
#pragma omp barrier
    int64_t begin, end;
    RowRange(w.rows, t, n, &begin, &end);
    if (begin < end) kernels.rows(job, begin, end);
  }
}

}  // namespace dsv4
#endif  // HWY_ONCE
