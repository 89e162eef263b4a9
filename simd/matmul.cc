#include "simd/matmul.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
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
#include "simd/matmul_call.h"
#include "simd/number_formats.h"
#include "simd/piece_runs.h"

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

// E4M3 tile scales as f32 (a few thousand per matrix at most), and their
// range, which the kernels check before every call's rows.
std::vector<float> DecodeTileScales(const WeightMatrix& w, TileScaleRange* range) {
  if (w.format != WeightFormat::kE4M3Blocked) return {};
  const int64_t count = w.ScaleRows() * w.ScaleCols();
  std::vector<float> scales(count);
  for (int64_t i = 0; i < count; ++i) {
    scales[i] = E8M0ToF32(w.scales[i]);
    if (std::isnan(scales[i])) {
      range->any_nan = true;
    } else {
      range->min = std::min(range->min, scales[i]);
      range->max = std::max(range->max, scales[i]);
    }
  }
  return scales;
}

// Below about 2^18 multiply-adds (some 50 us) per thread, waking the team
// costs more than the split saves.
int TeamSizeFor(const WeightMatrix& w, int64_t batch) {
  const double work = static_cast<double>(w.rows) * static_cast<double>(w.cols) * static_cast<double>(batch);
  const int64_t useful = static_cast<int64_t>(work / 262144.0) + 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), useful));
}

}  // namespace

const char* MatMulTargetName() { return HWY_DYNAMIC_DISPATCH(GetMatMulKernels)().target; }

// All function pointers of a call, and of the calls sharing its input, come
// from one target: the packing must match the kernels.
MatMulCall::MatMulCall(const WeightMatrix& w, const float* x, int64_t batch, float* y, const MatMulCall* input_of)
    : kernels_(input_of != nullptr ? input_of->kernels_ : HWY_DYNAMIC_DISPATCH(GetMatMulKernels)()) {
  CheckArguments(w, x, batch, y);
  tile_scales_ = DecodeTileScales(w, &job_.tile_scale_range);
  job_.w = &w;
  job_.x = x;
  job_.batch = batch;
  job_.tile_scales = tile_scales_.data();
  job_.y = y;
  if (input_of != nullptr) {
    const WeightMatrix& other = *input_of->job_.w;
    if (other.format != w.format || other.cols != w.cols || other.block_cols != w.block_cols ||
        input_of->job_.x != x || input_of->job_.batch != batch) {
      throw std::invalid_argument("MatMulCall: the shared input belongs to a differently shaped product");
    }
    job_.packed = input_of->job_.packed;
    return;
  }
  if (const int64_t floats = kernels_.plan_packing(job_); floats > 0) {
    packed_ = hwy::AllocateAligned<float>(floats);
    job_.packed = packed_.get();
  }
}

int MatMulCall::TeamSize() const { return TeamSizeFor(*job_.w, job_.batch); }

void MatMulCall::Pack(int thread, int threads) const {
  if (packed_ == nullptr || job_.w->cols == 0) return;
  kernels_.pack_input(job_, job_.batch * thread / threads, job_.batch * (thread + 1) / threads);
}

void MatMulCall::Rows(int64_t begin, int64_t end) const {
  if (begin >= end || job_.batch == 0) return;
  if (job_.w->cols == 0) {
    for (int64_t m = 0; m < job_.batch; ++m) {
      float* ym = job_.y + m * job_.w->rows;
      std::fill(ym + begin, ym + end, 0.0f);
    }
    return;
  }
  kernels_.rows(job_, begin, end);
}

void MatMulSimd(const WeightMatrix& w, const float* x, int64_t batch, float* y) {
  const MatMulCall call(w, x, batch, y);
  if (batch == 0 || w.rows == 0) return;
  const int team = call.TeamSize();
  if (team == 1) {  // no team to wake, no rows to share
    call.Pack(0, 1);
    return call.Rows(0, w.rows);
  }
  PieceRuns pieces({&w}, {batch}, team);
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    call.Pack(t, n);
#pragma omp barrier
    pieces.Take(t, n, [&](const RowPiece& rows) { call.Rows(rows.begin, rows.end); });
  }
}

}  // namespace dsv4
#endif  // HWY_ONCE
