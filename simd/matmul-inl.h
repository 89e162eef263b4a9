// Per-target bodies of MatMul (simd/matmul.cc includes this once per Highway
// target through hwy/foreach_target.h and dispatches at run time).
//
// Two kernels, both exact in the weights (decoded values equal the scalar
// codecs of number_formats.h) and f32 in the activations:
// - matvec (batch <= 4): memory-bound, so each weight byte is decoded in
//   registers right where it is multiplied (with a single input, two rows at
//   a time sharing the activation loads), rows are prefetched well ahead, and
//   block scales are applied once per scale block to a partial sum instead of
//   to every weight;
// - GEMM (batch >= 5): compute-bound, so a panel of weights is decoded once
//   into a cache-resident f32 tile and a register-blocked micro-kernel reuses
//   every decoded weight for all activation rows; its lanes are weight rows,
//   so each output is the reference's own chain, bit for bit.
// The input rows are first copied into a "packed" buffer: for the matvec,
// zero-padded and in the column order in which the FP4 decoder produces
// weights, so no lane ever has to be moved back into index order; for the
// GEMM, column-major per tile of input rows.

#include "simd/matmul_job.h"

// Per-target code (toggle guard, see hwy/foreach_target.h).
#if defined(DSV4_SIMD_MATMUL_INL_H_TARGET) == defined(HWY_TARGET_TOGGLE)
#ifdef DSV4_SIMD_MATMUL_INL_H_TARGET
#undef DSV4_SIMD_MATMUL_INL_H_TARGET
#else
#define DSV4_SIMD_MATMUL_INL_H_TARGET
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "simd/matmul.h"
#include "simd/number_formats.h"

HWY_BEFORE_NAMESPACE();
namespace dsv4 {
namespace HWY_NAMESPACE {
namespace matmul {

namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
constexpr size_t kN = hn::MaxLanes(DF());

// x86: AVX3 and AVX3_DL have a 16-entry vpermps; AVX2 does not.
#undef DSV4_MATMUL_FP4_PERMPS
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
#define DSV4_MATMUL_FP4_PERMPS 1
#else
#define DSV4_MATMUL_FP4_PERMPS 0
// The pshufb FP4 decoder below fills two 128-bit blocks per step.
static_assert(kN == 8, "MatMul kernels need AVX2 or AVX-512 (compile with -march=haswell or newer)");
#endif

// ------------------------------------------------------------------ E8M0 tables

// E8M0 code -> scale, exactly as E8M0ToF32, divided by `inverse_factor` (a
// power of two that a decoder multiplied its values by).
struct E8M0Table {
  float value[256];
  explicit E8M0Table(float inverse_factor) {
    for (int e = 0; e < 256; ++e) value[e] = E8M0ToF32(static_cast<uint8_t>(e)) * inverse_factor;
  }
};

inline const E8M0Table& ExactE8M0() {
  static const E8M0Table table(1.0f);
  return table;
}

// ------------------------------------------------------------------ Codecs
//
// A codec decodes kCols consecutive columns of one weight row into kVecs
// vectors, in packed column order, as value * kFactor (kFactor a power of
// two chosen so that decoding is cheapest). Scaled formats apply one scale
// per block of block_cols columns.

struct F32Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 32;
  static constexpr bool kScaled = false;
  static constexpr bool kPrefetchToL2 = true;
  static constexpr float kFactor = 1.0f;
  static constexpr int PackedSource(int i) { return i; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const float* p = reinterpret_cast<const float*>(row) + c;
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::LoadU(df, p + k * kN);
  }
};

struct BF16Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 16;
  static constexpr bool kScaled = false;
  static constexpr bool kPrefetchToL2 = true;
  static constexpr float kFactor = 1.0f;
  static constexpr int PackedSource(int i) { return i; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    const hwy::bfloat16_t* p = reinterpret_cast<const hwy::bfloat16_t*>(row) + c;
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::PromoteTo(df, hn::LoadU(dbf, p + k * kN));
  }
};

// float8_e4m3fn through IEEE half precision: sign-extend each byte into a
// 16-bit lane and shift it left by 7, which puts exponent and mantissa where
// an f16 keeps them and the sign in bit 15; clear the copy of the sign that
// lands in bit 14 and the lane is the f16 of value * 2^-8, subnormal codes
// included (they become f16 subnormals). vcvtph2ps widens it to f32 exactly.
// The NaN codes 0x7F/0xFF decode as +-480 * 2^-8 instead of NaN; checkpoints
// never contain them.
struct E4M3Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 8;
  static constexpr bool kScaled = true;
  static constexpr bool kPrefetchToL2 = true;
  static constexpr float kFactor = 1.0f / 256.0f;
  static constexpr int PackedSource(int i) { return i; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const hn::Rebind<int8_t, DF> d8;
    const hn::Rebind<int16_t, DF> d16;
    const hn::Rebind<hwy::float16_t, DF> dh;
    const int8_t* p = reinterpret_cast<const int8_t*>(row) + c;
    const auto clear_bit14 = hn::Set(d16, static_cast<int16_t>(0xBFFF));
    for (size_t k = 0; k < kVecs; ++k) {
      const auto lanes = hn::PromoteTo(d16, hn::LoadU(d8, p + k * kN));
      out[k] = hn::PromoteTo(df, hn::BitCast(dh, hn::And(hn::ShiftLeft<7>(lanes), clear_bit14)));
    }
  }
};

// E2M1, one group of 32 columns (16 bytes, element 2j in the low nibble).
#if DSV4_MATMUL_FP4_PERMPS
// Zero-extend the 16 bytes into 32-bit lanes; vpermps looks only at the low
// four bits of each index lane, so the byte itself indexes a 16-entry table
// of E2M1 values with its low nibble, and the byte shifted right by four with
// its high nibble. Packed order: the 16 even columns, then the 16 odd ones.
struct E2M1Codec {
  static constexpr size_t kVecs = 32 / kN;
  static constexpr size_t kCols = 32;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;
  static constexpr bool kPrefetchToL2 = false;
  static constexpr float kFactor = 1.0f;

  static constexpr int PackedSource(int i) { return i < 16 ? 2 * i : 2 * (i - 16) + 1; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    static_assert(kN == 16, "one 512-bit vector per 16 bytes");
    const DF df;
    const DU du;
    const hn::Rebind<uint8_t, DF> d8;
    alignas(64) static constexpr float kValues[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                                      -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
    const VF table = hn::Load(df, kValues);
    const auto bytes = hn::PromoteTo(du, hn::LoadU(d8, row + c / 2));
    out[0] = VF{_mm512_permutexvar_ps(bytes.raw, table.raw)};
    out[1] = VF{_mm512_permutexvar_ps(hn::ShiftRight<4>(bytes).raw, table.raw)};
  }
};
#else
// Duplicate the 16 bytes into both 128-bit blocks, keep the low nibbles in
// block 0 and the high nibbles in block 1, map the nibbles to 2 * value as
// int8 with one pshufb, then spread four bytes of each block into the top
// byte of 32-bit lanes (pshufb again) and convert: each f32 is value * 2^25.
struct E2M1Codec {
  static constexpr size_t kVecs = 4;
  static constexpr size_t kCols = 32;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;
  static constexpr bool kPrefetchToL2 = false;
  static constexpr float kFactor = 33554432.0f;  // 2^25

  // Vector k, block b, lane j holds byte 4k + j's nibble b: column 2(4k+j)+b.
  static constexpr int PackedSource(int i) { return 2 * (4 * (i / 8) + i % 4) + (i / 4) % 2; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const DI di;
    const DU du;
    const hn::Repartition<uint8_t, DF> d8;
    const hn::Repartition<int8_t, DF> di8;
    alignas(16) static constexpr int8_t kTwiceValues[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                                            0, -1, -2, -3, -4, -6, -8, -12};
    alignas(32) static constexpr uint32_t kNibbleShift[8] = {0, 0, 0, 0, 4, 4, 4, 4};
    // Spread masks: lane j of vector k takes byte 4k + j into its top byte;
    // index 0x80 zeroes the other three bytes.
    alignas(32) static constexpr uint32_t kSpread[4][8] = {
        {0x00808080u, 0x01808080u, 0x02808080u, 0x03808080u, 0x00808080u, 0x01808080u, 0x02808080u, 0x03808080u},
        {0x04808080u, 0x05808080u, 0x06808080u, 0x07808080u, 0x04808080u, 0x05808080u, 0x06808080u, 0x07808080u},
        {0x08808080u, 0x09808080u, 0x0A808080u, 0x0B808080u, 0x08808080u, 0x09808080u, 0x0A808080u, 0x0B808080u},
        {0x0C808080u, 0x0D808080u, 0x0E808080u, 0x0F808080u, 0x0C808080u, 0x0D808080u, 0x0E808080u, 0x0F808080u}};
    const auto packed = hn::LoadDup128(du, reinterpret_cast<const uint32_t*>(row + c / 2));
    const auto nibbles = hn::And(hn::BitCast(d8, packed >> hn::Load(du, kNibbleShift)), hn::Set(d8, 0x0F));
    const auto values = hn::TableLookupBytes(hn::LoadDup128(di8, kTwiceValues), hn::BitCast(di8, nibbles));
    for (size_t k = 0; k < kVecs; ++k) {
      const auto spread = hn::BitCast(di8, hn::Load(du, kSpread[k]));
      out[k] = hn::ConvertTo(df, hn::BitCast(di, hn::TableLookupBytesOr0(values, spread)));
    }
  }
};
#endif

// Where a format's scales come from: Row(r)[b] is the scale of row r and
// column block b (for the matvec divided by the codec's factor).
struct NoScales {
  struct Row {
    float operator[](int64_t) const { return 1.0f; }
  };
  Row ForRow(int64_t) const { return Row(); }
};

struct TileScales {  // E4M3: one f32 scale per block_rows x block_cols tile
  const float* scales;
  int64_t block_rows, scale_cols;
  int64_t row_offset;  // WeightMatrix::scale_row_offset of a row slice
  float factor;        // 1 / E4M3Codec::kFactor for the matvec, 1 for exact values
  struct Row {
    const float* scales;
    float factor;
    float operator[](int64_t b) const { return scales[b] * factor; }
  };
  Row ForRow(int64_t r) const { return Row{scales + ((r + row_offset) / block_rows) * scale_cols, factor}; }
};

struct GroupScales {  // E2M1: one E8M0 code per row and 32 columns
  const uint8_t* codes;
  int64_t scale_cols;
  const float* table;  // E8M0Table::value, possibly divided by E2M1Codec::kFactor
  struct Row {
    const uint8_t* codes;
    const float* table;
    float operator[](int64_t b) const { return table[codes[b]]; }
  };
  Row ForRow(int64_t r) const { return Row{codes + r * scale_cols, table}; }
};

inline const float* E2M1MatVecTable() {
  static const E8M0Table table(1.0f / E2M1Codec::kFactor);
  return table.value;
}

// With kFactor = 2^25 the matvec's per-group scale 2^(e-127-25) is exact only
// for codes e >= 3; rows holding smaller codes (scales below 2^-124, never in
// a real checkpoint) take the exact fallback.
inline bool E2M1RowScalesFitMatVec(const WeightMatrix& w, int64_t r) {
  if constexpr (E2M1Codec::kFactor == 1.0f) {
    return true;
  } else {
    const hn::ScalableTag<uint8_t> d8;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d8));
    const uint8_t* codes = w.scales + r * w.ScaleCols();
    const auto three = hn::Set(d8, 3);
    auto smallest = three;
    int64_t b = 0;
    for (; b + lanes <= w.ScaleCols(); b += lanes) smallest = hn::Min(smallest, hn::LoadU(d8, codes + b));
    bool fits = hn::AllTrue(d8, hn::Eq(smallest, three));
    for (; b < w.ScaleCols(); ++b) fits &= codes[b] >= 3;
    return fits;
  }
}

// The matvec multiplies E4M3 tile scales by 2^8 (E4M3Codec::kFactor): fine
// up to 2^119 (E8M0 code 246); larger scales, never in a real checkpoint, take
// the exact fallback. Checked per thread: a few thousand floats at most.
inline bool TileScalesFitMatVec(const MatMulJob& job) {
  const WeightMatrix& w = *job.w;
  const int64_t count = w.ScaleRows() * w.ScaleCols();
  for (int64_t i = 0; i < count; ++i) {
    if (std::isinf(job.tile_scales[i] / E4M3Codec::kFactor)) return false;
  }
  return true;
}

// ------------------------------------------------------------------ Helpers

inline const uint8_t* RowBytes(const WeightMatrix& w, int bits_per_col, int64_t r) {
  return w.data + r * (w.cols * bits_per_col / 8);
}

inline float ReduceSum(VF v) { return hn::GetLane(hn::SumOfLanes(DF(), v)); }

// y[m][r] for every m exactly as MatMulReference computes it: the path for
// shapes and scales the fast kernels do not cover.
inline void ExactRow(const MatMulJob& job, int64_t r, float* HWY_RESTRICT row) {
  const WeightMatrix& w = *job.w;
  DecodeRow(w, r, row);
  for (int64_t m = 0; m < job.batch; ++m) job.y[m * w.rows + r] = SequentialDot(row, job.x + m * w.cols, w.cols);
}

inline void ExactRows(const MatMulJob& job, int64_t r_begin, int64_t r_end) {
  std::vector<float> row(job.w->cols);
  for (int64_t r = r_begin; r < r_end; ++r) ExactRow(job, r, row.data());
}

// ------------------------------------------------------------------ Matvec

// How far ahead of the decoder each row's bytes are prefetched (once per cache
// line), rounded up to whole passes (MatVecRows): with the hardware stream
// prefetcher alone a thread stalls on DRAM latency (measured: 4 KiB ahead
// roughly doubled single-thread FP4 matvec; 8-16 KiB was no better). Codecs
// say where to: prefetching into L2 rather than L1 (more misses in flight)
// made single-thread FP8 matvec 20-30 % faster, FP4 (compute-bound) ~4 %
// slower, so FP4 prefetches into L1.
constexpr int64_t kPrefetchBytes = 4096;

// Per-row, per-input partial sums of one scale block. With a single input two
// chains per row hide the FMA latency; with several, the inputs do.
template <size_t kRows, size_t kInputs>
struct Partials {
  static constexpr size_t kChains = kInputs == 1 ? 2 : 1;
  VF sum[kRows][kInputs][kChains];
};

// One decode step at column c: kRows weight rows, each decoded once in
// registers and multiplied with kInputs packed input rows.
template <class Codec, size_t kRows, size_t kInputs, bool kPrefetch = true>
HWY_INLINE void MatVecStep(const uint8_t* const* rows, const uint8_t* const* ahead, int64_t c,
                           const float* HWY_RESTRICT x, int64_t x_stride, Partials<kRows, kInputs>& partials) {
  constexpr size_t kChains = Partials<kRows, kInputs>::kChains;
  const DF df;
  VF xv[kInputs][Codec::kVecs];
  for (size_t m = 0; m < kInputs; ++m) {
    for (size_t k = 0; k < Codec::kVecs; ++k) xv[m][k] = hn::Load(df, x + m * x_stride + k * kN);
  }
  for (size_t i = 0; i < kRows; ++i) {
    const int64_t offset = c * Codec::kBitsPerCol / 8;
    if (kPrefetch && offset % 64 == 0) {
      if constexpr (Codec::kPrefetchToL2) {
        __builtin_prefetch(ahead[i] + offset, /*rw=*/0, /*locality=*/2);  // prefetcht1
      } else {
        hwy::Prefetch(ahead[i] + offset);
      }
    }
    VF wv[Codec::kVecs];
    Codec::Decode(rows[i], c, wv);
    for (size_t k = 0; k < Codec::kVecs; ++k) {
      for (size_t m = 0; m < kInputs; ++m) {
        VF& sum = partials.sum[i][m][k % kChains];
        sum = hn::MulAdd(wv[k], xv[m][k], sum);
      }
    }
  }
}

// One decode step of the zero-padded copy of columns [c, cols) of each row.
template <class Codec, size_t kRows, size_t kInputs>
HWY_INLINE void MatVecTailStep(const uint8_t* const* rows, int64_t c, int64_t cols, const float* HWY_RESTRICT x,
                               int64_t x_stride, Partials<kRows, kInputs>& partials) {
  constexpr size_t kStepBytes = Codec::kCols * Codec::kBitsPerCol / 8;
  alignas(64) uint8_t tail[kRows][kStepBytes] = {};
  const uint8_t* tail_rows[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    std::memcpy(tail[i], rows[i] + c * Codec::kBitsPerCol / 8, (cols - c) * Codec::kBitsPerCol / 8);
    tail_rows[i] = tail[i];
  }
  MatVecStep<Codec, kRows, kInputs, /*kPrefetch=*/false>(tail_rows, nullptr, 0, x + c, x_stride, partials);
}

// y[m][r + i] for i < kRows, m < kInputs, from the packed input rows x. Each
// scale block's partial sums are scaled once; the columns past the last whole
// step form one more partial sum with the scale of the block they belong to.
template <class Codec, size_t kRows, size_t kInputs, class Scales>
HWY_INLINE void MatVecRows(const WeightMatrix& w, const Scales& scales, int64_t r, const float* HWY_RESTRICT x,
                           int64_t x_stride, float* HWY_RESTRICT y) {
  constexpr size_t kChains = Partials<kRows, kInputs>::kChains;
  const DF df;
  const int64_t cols = w.cols;
  const int64_t whole = cols / Codec::kCols * Codec::kCols;  // columns in whole steps
  const uint8_t* rows[kRows];
  typename Scales::Row row_scales[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    rows[i] = RowBytes(w, Codec::kBitsPerCol, r + i);
    row_scales[i] = scales.ForRow(r + i);
  }
  // The rows of one pass are adjacent in memory, so the prefetch distance is
  // whole passes: a distance inside a row would fetch what the next row of
  // the same pass is reading already.
  const int64_t pass_bytes = static_cast<int64_t>(kRows) * (cols * Codec::kBitsPerCol / 8);
  const int64_t ahead_bytes = (kPrefetchBytes + pass_bytes - 1) / pass_bytes * pass_bytes;
  const uint8_t* ahead[kRows];
  for (size_t i = 0; i < kRows; ++i) ahead[i] = rows[i] + ahead_bytes;
  VF acc[kRows][kInputs];
  Partials<kRows, kInputs> partials;
  for (size_t i = 0; i < kRows; ++i) {
    for (size_t m = 0; m < kInputs; ++m) acc[i][m] = hn::Zero(df);
  }
  const auto reset = [&] {
    for (size_t i = 0; i < kRows; ++i) {
      for (size_t m = 0; m < kInputs; ++m) {
        for (size_t j = 0; j < kChains; ++j) partials.sum[i][m][j] = hn::Zero(df);
      }
    }
  };
  const auto accumulate = [&](int64_t block) {
    for (size_t i = 0; i < kRows; ++i) {
      for (size_t m = 0; m < kInputs; ++m) {
        VF sum = partials.sum[i][m][0];
        for (size_t j = 1; j < kChains; ++j) sum = hn::Add(sum, partials.sum[i][m][j]);
        acc[i][m] = Codec::kScaled ? hn::MulAdd(sum, hn::Set(df, row_scales[i][block]), acc[i][m])
                                   : hn::Add(acc[i][m], sum);
      }
    }
  };
  const int64_t block = Codec::kScaled ? w.block_cols : whole + Codec::kCols;
  if (block == static_cast<int64_t>(Codec::kCols)) {  // FP4: one step per scale group
    for (int64_t c = 0; c < whole; c += Codec::kCols) {
      reset();
      MatVecStep<Codec, kRows, kInputs>(rows, ahead, c, x + c, x_stride, partials);
      accumulate(c / static_cast<int64_t>(Codec::kCols));
    }
  } else {
    for (int64_t c = 0, b = 0; c < whole; ++b) {
      const int64_t end = std::min(whole, c + block);
      reset();
      for (; c < end; c += Codec::kCols) MatVecStep<Codec, kRows, kInputs>(rows, ahead, c, x + c, x_stride, partials);
      accumulate(b);
    }
  }
  if (whole < cols) {
    reset();
    MatVecTailStep<Codec, kRows, kInputs>(rows, whole, cols, x, x_stride, partials);
    accumulate(whole / block);
  }
  for (size_t i = 0; i < kRows; ++i) {
    for (size_t m = 0; m < kInputs; ++m) y[m * w.rows + r + i] = ReduceSum(acc[i][m]);
  }
}

// Matvec for kInputs input rows (batch <= kMaxMatVecInputs): weights are
// decoded once per call, in registers. One input: two weight rows per pass
// share the input loads; several: one row per pass (register budget).
constexpr int64_t kMaxMatVecInputs = kMatMulSimdExactBatch - 1;

template <class Codec, size_t kInputs, class Scales>
void MatVec(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  constexpr int64_t kRows = kInputs == 1 ? 2 : 1;
  const WeightMatrix& w = *job.w;
  const bool check_scales = w.format == WeightFormat::kE2M1Grouped && E2M1Codec::kFactor != 1.0f;
  const auto fits = [&](int64_t r, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      if (check_scales && !E2M1RowScalesFitMatVec(w, r + i)) return false;
    }
    return true;
  };
  int64_t r = r_begin;
  for (; r + kRows <= r_end; r += kRows) {
    if (!fits(r, kRows)) {
      ExactRows(job, r, r + kRows);
    } else {
      MatVecRows<Codec, kRows, kInputs>(w, scales, r, job.packed, job.packed_stride, job.y);
    }
  }
  for (; r < r_end; ++r) {
    if (!fits(r, 1)) {
      ExactRows(job, r, r + 1);
    } else {
      MatVecRows<Codec, 1, kInputs>(w, scales, r, job.packed, job.packed_stride, job.y);
    }
  }
}

// ------------------------------------------------------------------ GEMM
//
// Broadcast form: the lanes of an accumulator are consecutive weight rows of
// one input row, and step c adds w[rows][c] * x[m][c], the product rounded
// before the sum exactly as SequentialDot does. Every output is then the
// reference's chain in column order whatever the vector width, so batched
// results are bit-identical to MatMulReference on every target. A mul and an
// add per multiply-add cost nothing on AMD cores, whose FP adders are pipes of
// their own beside the two FMA pipes; on Intel they share ports and the GEMM
// runs at up to half the FMA peak.
//
// Weights are decoded a panel at a time into f32, transposed to
// [column][row] within each register tile of kTileRows rows, and every
// decoded weight is reused for all input rows. Inputs are packed per tile of
// kTileInputs rows as [column][input], so the broadcasts of one step share a
// cache line.

// Register tile: kTileVecs weight-row vectors x kTileInputs input rows.
// Measured on Zen 4 (docs/performance-kernels.md): few inputs per tile, as
// each costs a broadcast per step.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr size_t kTileVecs = 8;  // 24 accumulators + 3 inputs + 1 weight + 1 product of 32 registers
constexpr size_t kTileInputs = 3;
#else
constexpr size_t kTileVecs = 2;  // 12 accumulators + 2 weights + 1 input + 1 product of 16
constexpr size_t kTileInputs = 6;
#endif
constexpr int64_t kTileRows = kTileVecs * kN;

// Input rows of the register tile that starts at input row m: kTileInputs,
// except that the last two tiles split what remains evenly once fewer than
// 2 * kTileInputs rows are left (16 rows on AVX3: 3+3+3+3+2+2, not ...+3+1,
// whose one-input tile loads every weight vector for a single broadcast).
inline int64_t TileInputsAt(int64_t m, int64_t batch) {
  const int64_t left = batch - m;
  if (left <= static_cast<int64_t>(kTileInputs) || left >= 2 * static_cast<int64_t>(kTileInputs)) {
    return std::min<int64_t>(kTileInputs, left);
  }
  return (left + 1) / 2;
}
// A decoded panel: kPanelRows weight rows x kPanelCols columns of f32
// (256 KiB, L2-resident); one tile of it is kTileRows x kPanelCols.
constexpr int64_t kPanelRows = 128;
constexpr int64_t kPanelCols = 512;
static_assert(kPanelRows % kTileRows == 0, "panels hold whole register tiles");

// Transposes a kN x kN block: out[j] lane i = in[i] lane j. Within each
// 128-bit block two interleave stages (32-bit, then 64-bit lanes) leave
// s[4j + k] holding, in block b, rows 4j..4j+3 of column 4b + k; the
// blocks are then gathered across vectors with each target's shuffle.
HWY_INLINE void Transpose(const VF* in, VF* out) {
  const DF df;
  const hn::Repartition<double, DF> dd;
  VF t[kN], s[kN];
  for (size_t i = 0; i < kN; i += 2) {
    t[i] = hn::InterleaveLower(df, in[i], in[i + 1]);
    t[i + 1] = hn::InterleaveUpper(df, in[i], in[i + 1]);
  }
  for (size_t j = 0; j < kN; j += 4) {
    const auto t0 = hn::BitCast(dd, t[j]), t1 = hn::BitCast(dd, t[j + 1]);
    const auto t2 = hn::BitCast(dd, t[j + 2]), t3 = hn::BitCast(dd, t[j + 3]);
    s[j] = hn::BitCast(df, hn::InterleaveLower(dd, t0, t2));
    s[j + 1] = hn::BitCast(df, hn::InterleaveUpper(dd, t0, t2));
    s[j + 2] = hn::BitCast(df, hn::InterleaveLower(dd, t1, t3));
    s[j + 3] = hn::BitCast(df, hn::InterleaveUpper(dd, t1, t3));
  }
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  for (int k = 0; k < 4; ++k) {
    // Blocks (0, 2) and (1, 3) of rows 0-7 and of rows 8-15, then per column.
    const __m512 even_lo = _mm512_shuffle_f32x4(s[k].raw, s[4 + k].raw, 0x88);
    const __m512 odd_lo = _mm512_shuffle_f32x4(s[k].raw, s[4 + k].raw, 0xDD);
    const __m512 even_hi = _mm512_shuffle_f32x4(s[8 + k].raw, s[12 + k].raw, 0x88);
    const __m512 odd_hi = _mm512_shuffle_f32x4(s[8 + k].raw, s[12 + k].raw, 0xDD);
    out[k].raw = _mm512_shuffle_f32x4(even_lo, even_hi, 0x88);
    out[8 + k].raw = _mm512_shuffle_f32x4(even_lo, even_hi, 0xDD);
    out[4 + k].raw = _mm512_shuffle_f32x4(odd_lo, odd_hi, 0x88);
    out[12 + k].raw = _mm512_shuffle_f32x4(odd_lo, odd_hi, 0xDD);
  }
#else
  for (int k = 0; k < 4; ++k) {
    out[k] = hn::ConcatLowerLower(df, s[4 + k], s[k]);
    out[4 + k] = hn::ConcatUpperUpper(df, s[4 + k], s[k]);
  }
#endif
}

// Decodes weight rows [r, min(r + kN, row_end)), zeros for the rest, columns
// [k0, k0 + depth) into lanes [0, kN) of a tile's [column][kTileRows] layout
// at `out`: exact values, decoded row by row, then transposed.
template <class Codec, class Scales>
HWY_INLINE void DecodeTransposed(const WeightMatrix& w, const Scales& scales, int64_t r, int64_t row_end, int64_t k0,
                                 int64_t depth, float* HWY_RESTRICT out) {
  const DF df;
  constexpr int64_t kStepBytes = Codec::kCols * Codec::kBitsPerCol / 8;
  const int64_t valid_rows = std::min<int64_t>(kN, row_end - r);
  const VF unfactor = hn::Set(df, 1.0f / Codec::kFactor);
  // Row pointers and scale rows once per call: their index arithmetic
  // includes divisions, which per row and step cost more than the decoding.
  const uint8_t* rows[kN];
  typename Scales::Row row_scales[kN];
  for (int64_t i = 0; i < valid_rows; ++i) {
    rows[i] = RowBytes(w, Codec::kBitsPerCol, r + i);
    row_scales[i] = scales.ForRow(r + i);
  }
  for (int64_t c = k0; c < k0 + depth; c += Codec::kCols) {
    const int64_t block = Codec::kScaled ? c / w.block_cols : 0;
    const bool whole_step = c + static_cast<int64_t>(Codec::kCols) <= w.cols;
    VF decoded[Codec::kVecs][kN];
    for (int64_t i = 0; i < static_cast<int64_t>(kN); ++i) {
      VF v[Codec::kVecs];
      if (i >= valid_rows) {
        for (size_t k = 0; k < Codec::kVecs; ++k) v[k] = hn::Zero(df);
      } else {
        if (whole_step) {
          Codec::Decode(rows[i], c, v);
        } else {
          alignas(64) uint8_t tail[kStepBytes] = {};
          std::memcpy(tail, rows[i] + c * Codec::kBitsPerCol / 8, (w.cols - c) * Codec::kBitsPerCol / 8);
          Codec::Decode(tail, 0, v);
        }
        if constexpr (Codec::kScaled) {
          const VF scale = hn::Set(df, row_scales[i][block]);
          for (size_t k = 0; k < Codec::kVecs; ++k) {
            if constexpr (Codec::kFactor != 1.0f) v[k] = hn::Mul(v[k], unfactor);
            v[k] = hn::Mul(v[k], scale);
          }
        }
      }
      for (size_t k = 0; k < Codec::kVecs; ++k) decoded[k][i] = v[k];
    }
    for (size_t k = 0; k < Codec::kVecs; ++k) {
      VF columns[kN];
      Transpose(decoded[k], columns);
      for (size_t j = 0; j < kN; ++j) {
        const int64_t col = c + Codec::PackedSource(static_cast<int>(k * kN + j));
        if (col < w.cols) hn::Store(columns[j], df, out + (col - k0) * kTileRows);
      }
    }
  }
}

// y[m][r + lane] for m < kInputs and lanes < valid_rows <= kVecs * kN,
// continuing the chains stored in y when `resume` (columns before this
// panel). Whichever operand is fewer per step stays in registers for it.
template <size_t kInputs, size_t kVecs>
HWY_NOINLINE void GemmTile(const float* HWY_RESTRICT x, const float* HWY_RESTRICT tile, int64_t depth,
                           float* HWY_RESTRICT y, int64_t y_stride, bool resume, int64_t valid_rows) {
  const DF df;
  constexpr int64_t kRows = kVecs * kN;
  VF acc[kInputs][kVecs];
  alignas(64) float partial[kRows];
  for (size_t m = 0; m < kInputs; ++m) {
    float* HWY_RESTRICT ym = y + m * y_stride;
    const float* from = ym;
    if (resume && valid_rows < kRows) {
      std::memcpy(partial, ym, valid_rows * sizeof(float));
      from = partial;
    }
    for (size_t v = 0; v < kVecs; ++v) acc[m][v] = resume ? hn::LoadU(df, from + v * kN) : hn::Zero(df);
  }
  for (int64_t c = 0; c < depth; ++c) {
    const float* HWY_RESTRICT w = tile + c * kTileRows;
    const float* HWY_RESTRICT xc = x + c * kInputs;
    if constexpr (kInputs <= kVecs) {
      VF xv[kInputs];
      for (size_t m = 0; m < kInputs; ++m) xv[m] = hn::Set(df, xc[m]);
      for (size_t v = 0; v < kVecs; ++v) {
        const VF wv = hn::Load(df, w + v * kN);
        for (size_t m = 0; m < kInputs; ++m) acc[m][v] = hn::Add(acc[m][v], hn::Mul(wv, xv[m]));
      }
    } else {
      VF wv[kVecs];
      for (size_t v = 0; v < kVecs; ++v) wv[v] = hn::Load(df, w + v * kN);
      for (size_t m = 0; m < kInputs; ++m) {
        const VF xv = hn::Set(df, xc[m]);
        for (size_t v = 0; v < kVecs; ++v) acc[m][v] = hn::Add(acc[m][v], hn::Mul(wv[v], xv));
      }
    }
  }
  for (size_t m = 0; m < kInputs; ++m) {
    float* HWY_RESTRICT ym = y + m * y_stride;
    if (valid_rows == kRows) {
      for (size_t v = 0; v < kVecs; ++v) hn::StoreU(acc[m][v], df, ym + v * kN);
    } else {
      for (size_t v = 0; v < kVecs; ++v) hn::Store(acc[m][v], df, partial + v * kN);
      std::memcpy(ym, partial, valid_rows * sizeof(float));
    }
  }
}

// GemmTile for `inputs` <= kInputs input rows and `vecs` <= kTileVecs row
// vectors: the last input rows of a batch and the last rows of a matrix take
// a smaller tile instead of computing zeros.
template <size_t kInputs, size_t kVecs = kTileVecs>
HWY_INLINE void GemmAnyTile(size_t inputs, size_t vecs, const float* x, const float* tile, int64_t depth, float* y,
                            int64_t y_stride, bool resume, int64_t valid_rows) {
  if constexpr (kInputs > 0 && kVecs > 0) {
    if (inputs < kInputs) return GemmAnyTile<kInputs - 1, kVecs>(inputs, vecs, x, tile, depth, y, y_stride, resume,
                                                                 valid_rows);
    if (vecs < kVecs) return GemmAnyTile<kInputs, kVecs - 1>(inputs, vecs, x, tile, depth, y, y_stride, resume,
                                                             valid_rows);
    GemmTile<kInputs, kVecs>(x, tile, depth, y, y_stride, resume, valid_rows);
  }
}

// The panel buffer of the calling thread, reused across calls.
inline float* ThreadPanel() {
  static thread_local hwy::AlignedFreeUniquePtr<float[]> panel;
  if (!panel) panel = hwy::AllocateAligned<float>(kPanelRows * kPanelCols);
  return panel.get();
}

// Asks for the weight bytes of the panel after (r0, k0) while the register
// tiles work on this one: a panel reads a few hundred bytes from each of
// 128 rows kilobytes apart, a pattern the hardware prefetchers do not follow
// (without it the panel decode waited on DRAM: a third of GEMM time at M = 16).
template <class Codec>
HWY_INLINE void PrefetchNextPanel(const WeightMatrix& w, int64_t r0, int64_t k0, int64_t r_end) {
  int64_t next_r0 = r0, next_k0 = k0 + kPanelCols;
  if (next_k0 >= w.cols) {
    next_r0 += kPanelRows;
    next_k0 = 0;
  }
  if (next_r0 >= r_end) return;
  const int64_t next_rows = std::min(kPanelRows, r_end - next_r0);
  const int64_t begin = next_k0 * Codec::kBitsPerCol / 8;
  const int64_t end = std::min(w.cols, next_k0 + kPanelCols) * Codec::kBitsPerCol / 8;
  for (int64_t i = 0; i < next_rows; ++i) {
    const uint8_t* row = RowBytes(w, Codec::kBitsPerCol, next_r0 + i);
    for (int64_t b = begin; b < end; b += 64) hwy::Prefetch(row + b);
  }
}

// Panel scales are the exact E8M0 values (the decoder removes kFactor itself).
template <class Codec, class Scales>
void Gemm(const MatMulJob& job, const Scales& exact_scales, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  float* HWY_RESTRICT panel = ThreadPanel();
  for (int64_t r0 = r_begin; r0 < r_end; r0 += kPanelRows) {
    const int64_t rows = std::min(kPanelRows, r_end - r0);
    for (int64_t k0 = 0; k0 < w.cols; k0 += kPanelCols) {
      const int64_t depth = std::min(kPanelCols, w.cols - k0);
      for (int64_t t = 0; t < rows; t += kTileRows) {
        for (size_t v = 0; v < kTileVecs; ++v) {
          const int64_t first = t + static_cast<int64_t>(v * kN);
          if (first >= rows) break;
          DecodeTransposed<Codec>(w, exact_scales, r0 + first, r0 + rows, k0, depth, panel + t * kPanelCols + v * kN);
        }
      }
      PrefetchNextPanel<Codec>(w, r0, k0, r_end);
      for (int64_t t = 0; t < rows; t += kTileRows) {
        const float* tile = panel + t * kPanelCols;
        const int64_t valid_rows = std::min(kTileRows, rows - t);
        float* y = job.y + r0 + t;
        const size_t vecs = static_cast<size_t>((valid_rows + kN - 1) / kN);
        for (int64_t m = 0, inputs; m < job.batch; m += inputs) {
          inputs = TileInputsAt(m, job.batch);
          const float* x = job.packed + m * job.packed_cols + k0 * inputs;
          GemmAnyTile<kTileInputs>(static_cast<size_t>(inputs), vecs, x, tile, depth, y + m * w.rows, w.rows, k0 > 0,
                                   valid_rows);
        }
      }
    }
  }
}

// ------------------------------------------------------------------ Entry points

template <class Codec, class Scales, class ExactScales>
void RunFormat(const MatMulJob& job, const Scales& matvec_scales, const ExactScales& exact_scales, int64_t r_begin,
               int64_t r_end) {
  static_assert(kMaxMatVecInputs <= 4, "one case per input count");
  if (job.batch > kMaxMatVecInputs) return Gemm<Codec>(job, exact_scales, r_begin, r_end);
  switch (job.batch) {
    case 1:
      return MatVec<Codec, 1>(job, matvec_scales, r_begin, r_end);
    case 2:
      return MatVec<Codec, 2>(job, matvec_scales, r_begin, r_end);
    case 3:
      return MatVec<Codec, 3>(job, matvec_scales, r_begin, r_end);
    default:
      return MatVec<Codec, 4>(job, matvec_scales, r_begin, r_end);
  }
}

inline void MatMulRows(const MatMulJob& job, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  switch (w.format) {
    case WeightFormat::kF32:
      return RunFormat<F32Codec>(job, NoScales(), NoScales(), r_begin, r_end);
    case WeightFormat::kBF16:
      return RunFormat<BF16Codec>(job, NoScales(), NoScales(), r_begin, r_end);
    case WeightFormat::kE4M3Blocked: {
      if (w.block_cols % E4M3Codec::kCols != 0 || !TileScalesFitMatVec(job)) return ExactRows(job, r_begin, r_end);
      const TileScales matvec{job.tile_scales, w.block_rows, w.ScaleCols(), w.scale_row_offset,
                              1.0f / E4M3Codec::kFactor};
      const TileScales exact{job.tile_scales, w.block_rows, w.ScaleCols(), w.scale_row_offset, 1.0f};
      return RunFormat<E4M3Codec>(job, matvec, exact, r_begin, r_end);
    }
    case WeightFormat::kE2M1Grouped: {
      if (w.block_cols != E2M1Codec::kCols) return ExactRows(job, r_begin, r_end);
      const GroupScales matvec{w.scales, w.ScaleCols(), E2M1MatVecTable()};
      const GroupScales exact{w.scales, w.ScaleCols(), ExactE8M0().value};
      return RunFormat<E2M1Codec>(job, matvec, exact, r_begin, r_end);
    }
  }
}

// Matvec: rows of packed_stride floats, columns in the codec's packed order,
// zero-padded to packed_cols. GEMM: per register tile of input rows (sizes
// from TileInputsAt), [column][input] in column order; the tile that starts
// at input row m starts at float m * packed_cols (= w.cols).
inline int64_t PlanPacking(MatMulJob* job) {
  const int64_t cols = job->w->cols;
  if (job->batch <= kMaxMatVecInputs) {
    job->packed_cols = (cols + kPackedColumnMultiple - 1) / kPackedColumnMultiple * kPackedColumnMultiple;
    job->packed_stride = job->packed_cols + kPackedRowSkew;
    return job->batch * job->packed_stride;
  }
  job->packed_cols = cols;
  job->packed_stride = 0;  // tiles differ in size: tile at m starts at m * cols
  return job->batch * cols;
}

inline void PackInput(const MatMulJob& job, int64_t m_begin, int64_t m_end) {
  const WeightMatrix& w = *job.w;
  const int64_t cols = w.cols;
  float* HWY_RESTRICT packed = job.packed;
  if (job.batch > kMaxMatVecInputs) {
    for (int64_t start = 0, inputs; start < m_end; start += inputs) {
      inputs = TileInputsAt(start, job.batch);
      for (int64_t m = std::max(start, m_begin); m < std::min(start + inputs, m_end); ++m) {
        const float* HWY_RESTRICT in = job.x + m * cols;
        float* HWY_RESTRICT out = packed + start * cols + (m - start);
        for (int64_t c = 0; c < cols; ++c) out[c * inputs] = in[c];
      }
    }
    return;
  }
  const bool fp4_order = w.format == WeightFormat::kE2M1Grouped && w.block_cols == E2M1Codec::kCols;
  for (int64_t m = m_begin; m < m_end; ++m) {
    const float* HWY_RESTRICT in = job.x + m * cols;
    float* HWY_RESTRICT out = packed + m * job.packed_stride;
    if (!fp4_order) {
      std::memcpy(out, in, cols * sizeof(float));
      std::fill(out + cols, out + job.packed_cols, 0.0f);
      continue;
    }
    for (int64_t g = 0; g < job.packed_cols; g += 32) {
      for (int i = 0; i < 32; ++i) {
        const int64_t c = g + E2M1Codec::PackedSource(i);
        out[g + i] = c < cols ? in[c] : 0.0f;
      }
    }
  }
}

}  // namespace matmul

// Exported through HWY_EXPORT in matmul.cc.
inline MatMulKernels GetMatMulKernels() {
  return MatMulKernels{&matmul::PlanPacking, &matmul::PackInput, &matmul::MatMulRows, hwy::TargetName(HWY_TARGET)};
}

}  // namespace HWY_NAMESPACE
}  // namespace dsv4
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
