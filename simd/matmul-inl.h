// Per-target bodies of MatMul (simd/matmul.cc includes this once per Highway
// target through hwy/foreach_target.h and dispatches at run time).
//
// Every output is the reference's ChainedDot, bit for bit, at every batch
// size and on every target: the lanes of an accumulator are the 16 chains of
// one output (one 512-bit vector, or two 256-bit ones), each step is one
// fused multiply-add of exactly decoded weights and the input at the same
// positions, and SumDotChains ends it (this file is compiled with
// -ffp-contract=off, so the compiler fuses nothing else). Weights are decoded
// 16 or 32 columns at a time in "position order", which is column order
// except in E2M1, where a group of 32 columns (16 bytes) decodes as its 16
// even columns, then its 16 odd ones; the input rows are first copied into a
// packed buffer in the same order, zero-padded to whole groups. Two kernels
// compute the chains:
// - matvec (batch <= 4): memory-bound, so every weight is decoded in
//   registers and used at once, a few rows side by side (each row a
//   sequential stream, each output its own 16 chains);
// - GEMM (batch >= 5): compute-bound, so a panel of rows is decoded once
//   into f32 and a register tile of rows x inputs reuses every decoded
//   weight and every input for several products.

#include "simd/matmul_job.h"

// Per-target code (toggle guard, see hwy/foreach_target.h).
#if defined(DSV4_SIMD_MATMUL_INL_H_TARGET) == defined(HWY_TARGET_TOGGLE)
#ifdef DSV4_SIMD_MATMUL_INL_H_TARGET
#undef DSV4_SIMD_MATMUL_INL_H_TARGET
#else
#define DSV4_SIMD_MATMUL_INL_H_TARGET
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "hwy/aligned_allocator.h"
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
using DU = hn::RebindToUnsigned<DF>;
using VF = hn::Vec<DF>;
constexpr size_t kN = hn::MaxLanes(DF());

// x86: AVX3 and AVX3_DL have a 16-entry vpermps; AVX2 does not.
#undef DSV4_MATMUL_AVX3
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
#define DSV4_MATMUL_AVX3 1
#else
#define DSV4_MATMUL_AVX3 0
static_assert(kN == 8, "MatMul kernels need AVX2 or AVX-512 (compile with -march=haswell or newer)");
#endif

// Vectors per output's chains: 1 on AVX3, 2 on AVX2.
constexpr size_t kSub = kDotChains / kN;
static_assert(kSub * kN == kDotChains, "whole vectors of chains");

// Input rows are packed in whole E2M1 groups, and one more cache line
// between rows: rows whose length is a multiple of 4 KiB start in the same L1
// set, and the GEMM reads 10 of them side by side (set conflicts cost it a
// third of its speed).
constexpr int64_t kGroupCols = 32;
inline int64_t PaddedCols(int64_t cols) { return (cols + kGroupCols - 1) / kGroupCols * kGroupCols; }
inline int64_t RowStride(int64_t cols) { return PaddedCols(cols) + kDotChains; }

// ------------------------------------------------------------------ Codecs
//
// A codec decodes kCols consecutive columns of a row (kCols * kBitsPerCol / 8
// bytes) into kVecs vectors in position order, scaled to the exact weights
// DecodeRow gives: Decode(bytes, block, out), where `block` is the vector its
// scales (below) give for the column block (formats with kScaled only).

struct F32Codec {
  static constexpr int64_t kCols = 16;
  static constexpr size_t kVecs = kCols / kN;
  static constexpr int kBitsPerCol = 32;
  static constexpr bool kScaled = false;

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT bytes, VF, VF* out) {
    const DF df;
    // Safetensors data need not be aligned to 4 bytes: LoadU.
    const float* p = reinterpret_cast<const float*>(bytes);
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::LoadU(df, p + k * kN);
  }
};

struct BF16Codec {
  static constexpr int64_t kCols = 16;
  static constexpr size_t kVecs = kCols / kN;
  static constexpr int kBitsPerCol = 16;
  static constexpr bool kScaled = false;

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT bytes, VF, VF* out) {
    const DF df;
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    const hwy::bfloat16_t* p = reinterpret_cast<const hwy::bfloat16_t*>(bytes);
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::PromoteTo(df, hn::LoadU(dbf, p + k * kN));
  }
};

// float8_e4m3fn through IEEE half precision: sign-extend each byte into a
// 16-bit lane and shift it left by 7, which puts exponent and mantissa where
// an f16 keeps them and the sign in bit 15; clear the copy of the sign that
// lands in bit 14 and the lane is the f16 of value * 2^-8, subnormal codes
// included (they become f16 subnormals). vcvtph2ps widens it to f32 exactly,
// and one multiply by scale * 2^8 gives the weight: the same real product as
// value * scale, rounded once (exact while scale * 2^8 is finite:
// TileScalesFit); the matvec multiplies the inputs by it instead where that
// gives the same bits (InputsTakeScales), once for all rows of a pass. The
// NaN codes 0x7F/0xFF decode as +-480 * scale instead of NaN; checkpoints
// never contain them. (Building the f32 bits directly, value * 2^-120, turns
// the subnormal codes into f32 subnormals, and multiplying those is slow on
// AMD cores.)
struct E4M3Codec {
  static constexpr int64_t kCols = 32;
  static constexpr size_t kVecs = kCols / kN;
  static constexpr int kBitsPerCol = 8;
  static constexpr bool kScaled = true;
  static constexpr float kScaleFactor = 256.0f;

  // value * 2^-8, without the scale.
  static HWY_INLINE void DecodeUnscaled(const uint8_t* HWY_RESTRICT bytes, VF* out) {
#if DSV4_MATMUL_AVX3
    // 32 bytes per widening and bit fix (512-bit), then each half to f32:
    // fewer instructions than 16 at a time on the ports the FMAs share.
    const __m512i lanes = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes)));
    const __m512i f16 = _mm512_and_si512(_mm512_slli_epi16(lanes, 7), _mm512_set1_epi16(static_cast<int16_t>(0xBFFF)));
    out[0] = VF{_mm512_cvtph_ps(_mm512_castsi512_si256(f16))};
    out[1] = VF{_mm512_cvtph_ps(_mm512_extracti64x4_epi64(f16, 1))};
#else
    // The same, 16 bytes per widening and bit fix (256-bit).
    const __m256i clear_bit14 = _mm256_set1_epi16(static_cast<int16_t>(0xBFFF));
    for (size_t k = 0; k < kVecs; k += 2) {
      const __m128i codes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + k * kN));
      const __m256i f16 = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(codes), 7), clear_bit14);
      out[k] = VF{_mm256_cvtph_ps(_mm256_castsi256_si128(f16))};
      out[k + 1] = VF{_mm256_cvtph_ps(_mm256_extracti128_si256(f16, 1))};
    }
#endif
  }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT bytes, VF scale, VF* out) {
    DecodeUnscaled(bytes, out);
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::Mul(out[k], scale);
  }
};

// E2M1, one group of 32 columns (16 bytes, element 2j in the low nibble),
// decoded as the 16 even columns, then the 16 odd ones, by looking each
// nibble up in a table of the group's scale times the E2M1 values. The table
// of every E8M0 code holds the same products DecodeRow makes, so a group
// costs a load where it cost a multiply on the FMA ports.
struct E2M1Tables {
  // kN floats per code: the code's scale, E8M0ToF32(code), times entries[j].
  alignas(64) float values[256 * kN];
  // Made by the compiler, not before main: code of this target run at start-up
  // would be an illegal instruction on a CPU without it. An E2M1 value times
  // 2^(code - 127) is exact in a double; in a float it is that double, or an
  // infinity past the float range (the float product rounds to the same).
  explicit constexpr E2M1Tables(const float* entries) : values{} {
    for (int code = 0; code < 256; ++code) {
      const double scale = std::bit_cast<double>(static_cast<uint64_t>(code - 127 + 1023) << 52);
      for (size_t j = 0; j < kN; ++j) {
        const double product = static_cast<double>(entries[j]) * scale;
        float& value = values[code * kN + j];
        if (code == 255) {
          value = std::numeric_limits<float>::quiet_NaN();
        } else if (product > std::numeric_limits<float>::max()) {
          value = std::numeric_limits<float>::infinity();
        } else if (product < -std::numeric_limits<float>::max()) {
          value = -std::numeric_limits<float>::infinity();
        } else {
          value = static_cast<float>(product);
        }
      }
    }
  }
};

#if DSV4_MATMUL_AVX3
// Zero-extend the 16 bytes into 32-bit lanes; vpermps looks only at the low
// four bits of each index lane, so the byte itself indexes the table with its
// low nibble, and the byte shifted right by four with its high nibble.
struct E2M1Codec {
  static constexpr int64_t kCols = 32;
  static constexpr size_t kVecs = 2;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;

  static_assert(kN == 16, "one 512-bit vector per 16 bytes");
  static constexpr float kTableEntries[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                              -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT bytes, VF table, VF* out) {
    const DU du;
    const hn::Rebind<uint8_t, DF> d8;
    const auto lanes = hn::PromoteTo(du, hn::LoadU(d8, bytes));
    out[0] = VF{_mm512_permutexvar_ps(lanes.raw, table.raw)};
    out[1] = VF{_mm512_permutexvar_ps(hn::ShiftRight<4>(lanes).raw, table.raw)};
  }
};
#else
// Zero-extend 8 bytes at a time into 32-bit lanes; an 8-entry vpermps (low
// three bits of each index) gives the scaled magnitude of a nibble and its top
// bit the sign. Vectors: even columns of bytes 0-7, of bytes 8-15, then odd
// columns of bytes 0-7, of bytes 8-15.
struct E2M1Codec {
  static constexpr int64_t kCols = 32;
  static constexpr size_t kVecs = 4;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;

  static constexpr float kTableEntries[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};  // magnitudes

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT bytes, VF magnitudes, VF* out) {
    const DU du;
    const hn::Rebind<uint8_t, DF> d8;
    const auto sign_bit = hn::Set(du, 0x80000000u);
    for (size_t half = 0; half < 2; ++half) {
      const auto lanes = hn::PromoteTo(du, hn::LoadU(d8, bytes + 8 * half));
      const VF low{_mm256_permutevar8x32_ps(magnitudes.raw, lanes.raw)};
      const VF high{_mm256_permutevar8x32_ps(magnitudes.raw, hn::ShiftRight<4>(lanes).raw)};
      out[half] = hn::Or(low, hn::BitCast(DF(), hn::And(hn::ShiftLeft<28>(lanes), sign_bit)));
      out[2 + half] = hn::Or(high, hn::BitCast(DF(), hn::And(hn::ShiftLeft<24>(lanes), sign_bit)));
    }
  }
};
#endif

// A group's table is a load from a fixed address.
inline constexpr E2M1Tables kE2M1Tables(E2M1Codec::kTableEntries);

// ------------------------------------------------------------------ Scales
//
// ForRow(r).Vector(b): the codec's vector for row r in column block b
// (Codec::kScaled only).

struct NoScales {
  struct Row {
    VF Vector(int64_t) const { return hn::Set(DF(), 1.0f); }
  };
  Row ForRow(int64_t) const { return Row(); }
};

// The range of the tile scales of a matrix times E4M3Codec::kScaleFactor
// (powers of two: scaling the range scales every scale, exactly unless it
// overflows).
struct ScaledTileRange {
  float min = std::numeric_limits<float>::infinity(), max = 0.0f;  // of those that are numbers
  bool any_infinite = false, any_nan = false;
};

inline ScaledTileRange RangeOfTileScales(const MatMulJob& job) {
  const TileScaleRange& range = job.tile_scale_range;
  const float max = range.max * E4M3Codec::kScaleFactor;
  return ScaledTileRange{range.min * E4M3Codec::kScaleFactor, max, std::isinf(max), range.any_nan};
}

struct TileScales {  // E4M3: one f32 scale per block_rows x block_cols tile
  const float* scales;
  int64_t block_rows, scale_cols;
  int64_t row_offset;  // WeightMatrix::scale_row_offset of a row slice
  ScaledTileRange range;
  struct Row {
    const float* scales;
    // The scale times E4M3Codec::kScaleFactor, in every lane.
    VF Vector(int64_t b) const { return hn::Set(DF(), scales[b] * E4M3Codec::kScaleFactor); }
  };
  Row ForRow(int64_t r) const { return Row{scales + ((r + row_offset) / block_rows) * scale_cols}; }
  bool SameRowBlock(int64_t first, int64_t last) const {
    return (first + row_offset) / block_rows == (last + row_offset) / block_rows;
  }
};

struct GroupScales {  // E2M1: one E8M0 code per row and 32 columns
  const uint8_t* codes;
  int64_t scale_cols;
  struct Row {
    const uint8_t* codes;
    // The scaled E2M1 table of block b (E2M1Codec's vector).
    VF Vector(int64_t b) const { return hn::Load(DF(), kE2M1Tables.values + static_cast<size_t>(codes[b]) * kN); }
  };
  Row ForRow(int64_t r) const { return Row{codes + r * scale_cols}; }
};

// E4M3Codec folds kScaleFactor into the tile scales (exact while the product
// is finite): scales from 2^120 on, never in a real checkpoint, take the
// exact fallback.
inline bool TileScalesFit(const ScaledTileRange& range) { return !range.any_infinite; }

// Whether an E4M3 matvec may multiply each input by its tile's scale (times
// kScaleFactor) once per step, rather than every row's weights: the product
// value * (x * scale) is the real number (value * scale) * x, rounded once by
// the same FMA, so the result is the same bit for bit while x * scale is
// exact. The tile scales come from E8M0 codes: powers of two, so that holds
// while no nonzero input times any scale leaves the normal range and every
// input is finite. One pass over the packed inputs per call and thread.
inline bool InputsTakeScales(const MatMulJob& job, const ScaledTileRange& range) {
  if (range.any_nan || range.any_infinite || range.min < std::numeric_limits<float>::min()) return false;
  const WeightMatrix& w = *job.w;
  // |x| as bits: ordered like the magnitudes, NaN and infinity from 0x7F800000.
  const DU du;
  auto largest = hn::Zero(du), smallest = hn::Set(du, 0xFFFFFFFFu);
  const int64_t floats = job.batch * RowStride(w.cols);
  for (int64_t i = 0; i < floats; i += static_cast<int64_t>(kN)) {
    const auto magnitude = hn::And(hn::BitCast(du, hn::Load(DF(), job.packed + i)), hn::Set(du, 0x7FFFFFFFu));
    largest = hn::Max(largest, magnitude);
    smallest = hn::Min(smallest, hn::IfThenElse(hn::Eq(magnitude, hn::Zero(du)), hn::Set(du, 0xFFFFFFFFu), magnitude));
  }
  const uint32_t largest_bits = hn::GetLane(hn::MaxOfLanes(du, largest));
  const uint32_t smallest_bits = hn::GetLane(hn::MinOfLanes(du, smallest));
  if (largest_bits >= 0x7F800000u) return false;
  if (smallest_bits == 0xFFFFFFFFu) return true;  // every input is zero
  float largest_x, smallest_x;
  std::memcpy(&largest_x, &largest_bits, sizeof(float));
  std::memcpy(&smallest_x, &smallest_bits, sizeof(float));
  return smallest_x * range.min >= std::numeric_limits<float>::min() &&
         largest_x * range.max <= std::numeric_limits<float>::max();
}

// ------------------------------------------------------------------ Helpers

inline const uint8_t* RowBytes(const WeightMatrix& w, int bits_per_col, int64_t r) {
  return w.data + r * (w.cols * bits_per_col / 8);
}

// y[m][r] for every m exactly as MatMulReference computes it: the path for
// scale blocks the kernels do not cover.
inline void ExactRows(const MatMulJob& job, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  std::vector<float> row(w.cols);
  for (int64_t r = r_begin; r < r_end; ++r) {
    DecodeRow(w, r, row.data());
    for (int64_t m = 0; m < job.batch; ++m) {
      job.y[m * w.rows + r] = ChainedDot(row.data(), job.x + m * w.cols, w.cols, w.format);
    }
  }
}

// One output from its chains (kSub vectors): SumDotChains's tree.
HWY_INLINE float SumChains(const VF* chains) {
  alignas(64) float lanes[kDotChains];
  for (size_t s = 0; s < kSub; ++s) hn::Store(chains[s], DF(), lanes + s * kN);
  return SumDotChains(lanes);
}

// Decodes the step at column c of a row (row_bytes long) into out. kTail: the
// row's last step, which may pass its end: the bytes past it decode as zeros.
// kUnscaled: without the scale (E4M3Codec::DecodeUnscaled).
template <class Codec, bool kTail, bool kUnscaled = false>
HWY_INLINE void DecodeStep(const uint8_t* row, int64_t row_bytes, int64_t c, VF scale, VF* out) {
  constexpr int64_t kStepBytes = Codec::kCols * Codec::kBitsPerCol / 8;
  const int64_t offset = c * Codec::kBitsPerCol / 8;
  const auto decode = [&](const uint8_t* bytes) {
    if constexpr (kUnscaled) {
      Codec::DecodeUnscaled(bytes, out);
    } else {
      Codec::Decode(bytes, scale, out);
    }
  };
  if constexpr (!kTail) {
    decode(row + offset);
  } else {
    alignas(64) uint8_t tail[kStepBytes] = {};
    std::memcpy(tail, row + offset, static_cast<size_t>(row_bytes - offset));
    decode(tail);
  }
}

// The decode vectors (Scales::Row::Vector) of kRows rows,
// updated as the steps enter each column block.
template <class Codec, size_t kRows, class RowScales>
struct StepScales {
  const RowScales* rows;
  int64_t block_cols;
  int64_t next_block = 0;  // first column of the next block
  int64_t block = 0;       // its index
  VF scale[kRows];

  StepScales(const RowScales* row_scales, int64_t block) : rows(row_scales), block_cols(block) {
    for (size_t i = 0; i < kRows; ++i) scale[i] = hn::Set(DF(), 1.0f);
  }
  HWY_INLINE void At(int64_t c) {
    if constexpr (Codec::kScaled) {
      if (c != next_block) return;
      for (size_t i = 0; i < kRows; ++i) scale[i] = rows[i].Vector(block);
      next_block += block_cols;
      ++block;
    }
  }
};

// The outputs of kN chains' sets at once: chains[o] points to output o's
// kDotChains floats, and lane o of the result is SumDotChains of them, the
// same sums (levels 8, 4, 2, 1 of the tree), computed on the outputs side by
// side.
HWY_INLINE VF SumChainsSideBySide(const float* const* chains) {
#if DSV4_MATMUL_AVX3
  // Level 8: output 2p's sums in lanes 0-7, 2p + 1's in 8-15.
  __m512 pairs[8];
  for (int p = 0; p < 8; ++p) {
    const __m512 a = _mm512_load_ps(chains[2 * p]), b = _mm512_load_ps(chains[2 * p + 1]);
    pairs[p] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  }
  // Level 4: 128-bit block k holds output 4q + k's four sums.
  __m512 quads[4];
  for (int q = 0; q < 4; ++q) {
    const __m512 a = pairs[2 * q], b = pairs[2 * q + 1];
    quads[q] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
  }
  // Level 2: block k holds outputs k and 4 + k (halves[0]), 8 + k and 12 + k
  // (halves[1]), two sums each.
  __m512 halves[2];
  for (int h = 0; h < 2; ++h) {
    const __m512 a = quads[2 * h], b = quads[2 * h + 1];
    halves[h] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Level 1: lane 4k + j holds output k + 4j.
  const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm512_shuffle_ps(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return VF{_mm512_permutexvar_ps(order, sums)};
#else
  // Level 8: the two vectors of each output's chains.
  __m256 eights[8];
  for (int o = 0; o < 8; ++o) eights[o] = _mm256_add_ps(_mm256_load_ps(chains[o]), _mm256_load_ps(chains[o] + 8));
  // Level 4: output 2p's sums in lanes 0-3, 2p + 1's in 4-7.
  __m256 pairs[4];
  for (int p = 0; p < 4; ++p) {
    const __m256 a = eights[2 * p], b = eights[2 * p + 1];
    pairs[p] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  }
  // Level 2: block 0 holds outputs 4h and 4h + 2, block 1 4h + 1 and 4h + 3.
  __m256 halves[2];
  for (int h = 0; h < 2; ++h) {
    const __m256 a = pairs[2 * h], b = pairs[2 * h + 1];
    halves[h] = _mm256_add_ps(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Level 1: block 0 holds outputs 0, 2, 4, 6; block 1 outputs 1, 3, 5, 7.
  const __m256 sums = _mm256_add_ps(_mm256_shuffle_ps(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm256_shuffle_ps(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
  return VF{_mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))};
#endif
}

// ------------------------------------------------------------------ Matvec
//
// A pass computes kRows consecutive rows for kInputs packed input rows: the
// rows are read side by side, each a sequential stream, and each output
// keeps its own 16 chains, so the FMAs of a step are independent. With one
// vector of chains per output (AVX3), passes of 8 rows for one or two inputs
// ran 6-18 % faster than passes of 4 (FP4, BF16 and FP8 matvecs, one thread,
// Zen 5); 8 rows x 4 inputs would take all 32 registers for accumulators.
constexpr int64_t kMaxMatVecInputs = 4;
template <size_t kInputs>
constexpr size_t MatVecRows() {
#if DSV4_MATMUL_AVX3
  return kInputs <= 2 ? 8 : 4;
#else
  return 2;
#endif
}

// Whether an E4M3 pass of kRows rows may keep its inputs' scaled vectors in
// registers beside its accumulators and a row's weights: on AVX2 (16
// registers) only for one input; two inputs or more spilled (4 inputs 12 %
// slower than scaling the weights).
template <size_t kInputs, size_t kRows>
constexpr bool ScaledInputsFit() {
  constexpr size_t kRegisters = DSV4_MATMUL_AVX3 ? 32 : 16;
  return kRows * kInputs * kSub + (kInputs + 1) * E4M3Codec::kVecs + 1 <= kRegisters;
}

// One step (Codec::kCols columns at c) of a pass: every row's weights
// decoded and multiplied into its outputs' chains. kScaleInputs (E4M3, rows
// of one scale block, InputsTakeScales): the inputs are multiplied by the
// block's scale (scale[0]) once for all rows, the weights are not.
template <class Codec, size_t kInputs, size_t kRows, bool kTail, bool kScaleInputs>
HWY_INLINE void MatVecStep(const uint8_t* HWY_RESTRICT rows, int64_t row_bytes, int64_t c, const VF* scale,
                           const float* HWY_RESTRICT x, int64_t stride, VF (&acc)[kRows][kInputs][kSub]) {
  const DF df;
  const auto input = [&](size_t m, size_t v) {
    return hn::Load(df, x + static_cast<int64_t>(m) * stride + c + static_cast<int64_t>(v * kN));
  };
  VF scaled_inputs[kScaleInputs ? kInputs : 1][Codec::kVecs];
  if constexpr (kScaleInputs) {
    for (size_t m = 0; m < kInputs; ++m) {
      for (size_t v = 0; v < Codec::kVecs; ++v) scaled_inputs[m][v] = hn::Mul(input(m, v), scale[0]);
    }
  }
  for (size_t i = 0; i < kRows; ++i) {
    VF weights[Codec::kVecs];
    DecodeStep<Codec, kTail, kScaleInputs>(rows + static_cast<int64_t>(i) * row_bytes, row_bytes, c,
                                           scale[kScaleInputs ? 0 : i], weights);
    for (size_t v = 0; v < Codec::kVecs; ++v) {
      for (size_t m = 0; m < kInputs; ++m) {
        VF xv;
        if constexpr (kScaleInputs) {
          xv = scaled_inputs[m][v];
        } else {
          xv = input(m, v);
        }
        acc[i][m][v % kSub] = hn::MulAdd(weights[v], xv, acc[i][m][v % kSub]);
      }
    }
  }
}

// y[m][r, r + kRows) for m < kInputs.
template <class Codec, size_t kInputs, size_t kRows, bool kScaleInputs, class Scales>
HWY_NOINLINE void MatVecPass(const MatMulJob& job, const Scales& scales, int64_t r) {
  const DF df;
  const WeightMatrix& w = *job.w;
  const int64_t stride = RowStride(w.cols);
  const int64_t row_bytes = w.cols * Codec::kBitsPerCol / 8;
  const uint8_t* HWY_RESTRICT rows = RowBytes(w, Codec::kBitsPerCol, r);
  // One row's scales serve all when the inputs take them.
  constexpr size_t kScaleRows = kScaleInputs ? 1 : kRows;
  typename Scales::Row row_scales[kScaleRows];
  for (size_t i = 0; i < kScaleRows; ++i) row_scales[i] = scales.ForRow(r + static_cast<int64_t>(i));
  StepScales<Codec, kScaleRows, typename Scales::Row> step_scales(row_scales, w.block_cols);
  VF acc[kRows][kInputs][kSub];
  for (size_t i = 0; i < kRows; ++i) {
    for (size_t m = 0; m < kInputs; ++m) {
      for (size_t s = 0; s < kSub; ++s) acc[i][m][s] = hn::Zero(df);
    }
  }
  const float* HWY_RESTRICT x = job.packed;
  const int64_t whole = w.cols / Codec::kCols * Codec::kCols;
  // The next pass's rows follow these in memory: they are prefetched into L2
  // in address order, as many bytes per step as the step reads. One
  // sequential stream keeps DRAM and the hardware prefetchers efficient
  // where the rows of a pass, read side by side, are as many streams (cold
  // FP8 rows of 1 KiB: 11 GB/s without, 19-22 with).
  constexpr int64_t kStepBytes = Codec::kCols * Codec::kBitsPerCol / 8;
  constexpr int64_t kAheadPerStep = static_cast<int64_t>(kRows) * kStepBytes;
  const uint8_t* ahead = rows + static_cast<int64_t>(kRows) * row_bytes;
  for (int64_t c = 0; c < whole; c += Codec::kCols, ahead += kAheadPerStep) {
    for (int64_t line = 0; line < kAheadPerStep; line += 64) __builtin_prefetch(ahead + line, /*rw=*/0, /*locality=*/2);
    step_scales.At(c);
    MatVecStep<Codec, kInputs, kRows, /*kTail=*/false, kScaleInputs>(rows, row_bytes, c, step_scales.scale, x, stride,
                                                                     acc);
  }
  if (whole < w.cols) {
    step_scales.At(whole);
    MatVecStep<Codec, kInputs, kRows, /*kTail=*/true, kScaleInputs>(rows, row_bytes, whole, step_scales.scale, x, stride,
                                                                    acc);
  }
  for (size_t i = 0; i < kRows; ++i) {
    for (size_t m = 0; m < kInputs; ++m) {
      job.y[static_cast<int64_t>(m) * w.rows + r + static_cast<int64_t>(i)] = SumChains(acc[i][m]);
    }
  }
}

// Rows [r_begin, r_end) in passes of MatVecRows, the last rows one by one;
// E4M3 passes within one scale block scale the inputs where
// InputsTakeScales says they may (checked only where a pass could).
template <class Codec, size_t kInputs, class Scales>
void MatVec(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  constexpr int64_t kRows = static_cast<int64_t>(MatVecRows<kInputs>());
  bool inputs_take_scales = false;
  if constexpr (std::is_same_v<Codec, E4M3Codec> && ScaledInputsFit<kInputs, 1>()) {
    inputs_take_scales = InputsTakeScales(job, scales.range);
  }
  const auto pass = [&](auto rows, int64_t r) {
    constexpr size_t kPassRows = decltype(rows)::value;
    if constexpr (std::is_same_v<Codec, E4M3Codec> && ScaledInputsFit<kInputs, kPassRows>()) {
      if (inputs_take_scales && scales.SameRowBlock(r, r + static_cast<int64_t>(kPassRows) - 1)) {
        return MatVecPass<Codec, kInputs, kPassRows, /*kScaleInputs=*/true>(job, scales, r);
      }
    }
    MatVecPass<Codec, kInputs, kPassRows, /*kScaleInputs=*/false>(job, scales, r);
  };
  int64_t r = r_begin;
  for (; r + kRows <= r_end; r += kRows) pass(std::integral_constant<size_t, kRows>(), r);
  for (; r < r_end; ++r) pass(std::integral_constant<size_t, 1>(), r);
}

// ------------------------------------------------------------------ GEMM
//
// A panel of up to kMaxPanelRows rows is decoded whole (every column) in
// position order, zero-padded like the packed inputs; every input row then
// passes once per panel, so the more rows a panel has (as many as fit
// kPanelBytes, L2-resident), the less the inputs stream from L3 (at M = 512,
// 16-row panels ran at 40 % of the FMA peak, bound by the inputs' traffic). A
// register tile holds the chains of kTileRows rows x up to kTileInputs inputs;
// per step of 16 positions it loads one vector of chains' weights per row and
// of inputs per input row, and makes every product of them. The columns are
// walked in blocks of kBlockCols, every tile of the panel per block, so that
// the block of the tile's inputs stays in L1 while the panel streams from L2;
// the chains wait in a small buffer between blocks (the order of each chain is
// the same).
#if DSV4_MATMUL_AVX3
constexpr size_t kTileRows = 4;  // 24 accumulators + 4 weights + 1 input of 32 registers
constexpr size_t kTileInputs = 6;
#else
// 12 accumulators + 1 weight + the bf16 mask of 16 registers; each input
// vector is an operand of its one FMA. A 2 x 3 tile loads fewer inputs, but
// GCC spills two of its accumulators per group (kernels_benchmark, one thread,
// Zen 3, M = 128 and 512: 1 x 6 at 49-64 % of the FMA peak, 2 x 3 at 31-55 %).
constexpr size_t kTileRows = 1;
constexpr size_t kTileInputs = 6;
#endif
constexpr int64_t kMaxPanelRows = 64;
constexpr int64_t kPanelBytes = int64_t{1} << 20;
constexpr int64_t kBlockCols = 1024;
static_assert(16 % kTileRows == 0, "panels hold whole register tiles");
static_assert(kBlockCols % kGroupCols == 0, "blocks of whole position groups");

// How a panel keeps its decoded weights. F32Panel: as f32, for every format.
// Bf16PairPanel: as bf16, where every decoded weight of the matrix is exactly
// a bf16 (ExactInBf16: BF16, and E2M1 and E4M3 with their E8M0 scales, whose
// products have at most 4 significant bits): half the bytes, so the decode
// stores half as much and a tile's step reads half as much from L2 (a
// stand-alone copy of the tile loop ran 15-25 % faster at M = 96-512). Word i
// of each 32-position group holds position i in its high half and position
// 16 + i in its low half: a mask gives back the f32 of the first, a shift
// left by 16 that of the second, bit for bit.
struct F32Panel {
  using Word = float;
  // Words per panel row, as the packed inputs: one more cache line between
  // rows.
  static int64_t Stride(int64_t cols) { return RowStride(cols); }
  // Stores the 32 positions at c (in 2 * kSub vectors, position order).
  static HWY_INLINE void StoreGroup(const VF* weights, int64_t c, Word* HWY_RESTRICT row) {
    for (size_t v = 0; v < 2 * kSub; ++v) hn::Store(weights[v], DF(), row + c + static_cast<int64_t>(v * kN));
  }
  // Vector s of the weights of the step at c + 16 * half (c: a group's start).
  static HWY_INLINE VF Weights(const Word* HWY_RESTRICT row, int64_t c, size_t half, size_t s) {
    return hn::Load(DF(), row + c + static_cast<int64_t>(half * kDotChains + s * kN));
  }
};

struct Bf16PairPanel {
  using Word = uint32_t;
  static int64_t Stride(int64_t cols) { return PaddedCols(cols) / 2 + kDotChains; }
  static HWY_INLINE void StoreGroup(const VF* weights, int64_t c, Word* HWY_RESTRICT row) {
    const DU du;
    for (size_t s = 0; s < kSub; ++s) {
      const auto first = hn::And(hn::BitCast(du, weights[s]), hn::Set(du, 0xFFFF0000u));
      const auto second = hn::ShiftRight<16>(hn::BitCast(du, weights[kSub + s]));
      hn::Store(hn::Or(first, second), du, row + c / 2 + static_cast<int64_t>(s * kN));
    }
  }
  static HWY_INLINE VF Weights(const Word* HWY_RESTRICT row, int64_t c, size_t half, size_t s) {
    const DU du;
    const auto words = hn::Load(du, row + c / 2 + static_cast<int64_t>(s * kN));
    return hn::BitCast(DF(), half == 0 ? hn::And(words, hn::Set(du, 0xFFFF0000u)) : hn::ShiftLeft<16>(words));
  }};

// Rows per panel for rows of `stride` words: a multiple of 16 from 16 to
// kMaxPanelRows.
inline int64_t PanelRows(int64_t stride) {
  const int64_t fit = kPanelBytes / (stride * 4) / 16 * 16;
  return std::clamp<int64_t>(fit, 16, kMaxPanelRows);
}

// Whether every weight the codec decodes with these scales is exactly a bf16
// (its f32 has zero low 16 bits).
inline bool ExactInBf16(const E2M1Tables& tables) {
  for (const float v : tables.values) {
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    if ((bits & 0xFFFFu) != 0) return false;
  }
  return true;
}
template <class Codec, class Scales>
bool ExactInBf16(const Scales& scales) {
  if constexpr (std::is_same_v<Codec, BF16Codec>) {
    return true;
  } else if constexpr (std::is_same_v<Codec, E2M1Codec>) {
    static const bool exact = ExactInBf16(kE2M1Tables);  // every code's table: the same for every matrix
    return exact;
  } else if constexpr (std::is_same_v<Codec, E4M3Codec>) {
    // E4M3 values have at most 4 significant bits, down to 2^-9: times a
    // power of two from 2^-117 on (2^-109 with kScaleFactor), every product
    // is zero, normal or infinite, so it keeps them; NaN scales do not say.
    return !scales.range.any_nan && scales.range.min >= std::ldexp(1.0f, -109);
  } else {
    return false;
  }
}

// Input rows of the register tile that starts at input row m: kTileInputs,
// except that the last two tiles split what remains evenly once fewer than
// 2 * kTileInputs rows are left (16 rows on AVX3: 6+5+5, not 6+6+4; 7 rows:
// 4+3, not 6+1, whose one-input tile loads every weight vector for a single
// product).
inline int64_t TileInputsAt(int64_t m, int64_t batch) {
  const int64_t left = batch - m;
  if (left <= static_cast<int64_t>(kTileInputs) || left >= 2 * static_cast<int64_t>(kTileInputs)) {
    return std::min<int64_t>(kTileInputs, left);
  }
  return (left + 1) / 2;
}

// The chains of one register tile, kept between column blocks:
// [kTileRows][kTileInputs][kDotChains] floats.
constexpr int64_t kTileChains = static_cast<int64_t>(kTileRows * kTileInputs) * kDotChains;

// Chains of the tile's kTileRows panel rows (at `rows`, `row_stride` words
// apart) x kInputs inputs (at `x`, `x_stride` floats apart) over positions
// [c_begin, c_end) (whole groups), continuing those in `chains` unless
// `first`.
template <size_t kInputs, class Panel>
HWY_NOINLINE void GemmBlock(const typename Panel::Word* HWY_RESTRICT rows, int64_t row_stride,
                            const float* HWY_RESTRICT x, int64_t x_stride, int64_t c_begin, int64_t c_end, bool first,
                            float* HWY_RESTRICT chains) {
  const DF df;
  VF acc[kTileRows][kInputs][kSub];
  for (size_t r = 0; r < kTileRows; ++r) {
    for (size_t m = 0; m < kInputs; ++m) {
      for (size_t s = 0; s < kSub; ++s) {
        float* at = chains + ((r * kTileInputs + m) * kDotChains + s * kN);
        acc[r][m][s] = first ? hn::Zero(df) : hn::Load(df, at);
      }
    }
  }
  for (int64_t c = c_begin; c < c_end; c += kGroupCols) {
    for (size_t half = 0; half < 2; ++half) {
      // The same rows through a pointer the compiler cannot see through, so
      // that each half loads its words (the shift and the mask take them from
      // memory): otherwise GCC keeps the four rows' words in registers from
      // one half to the next and spills three accumulators per group
      // (kernels_benchmark, M = 128: 63-71 % of the FMA peak against 57-68 %).
      const typename Panel::Word* half_rows = rows;
      asm("" : "+r"(half_rows));
      for (size_t s = 0; s < kSub; ++s) {
        const int64_t at = c + static_cast<int64_t>(half * kDotChains + s * kN);
        VF wv[kTileRows];
        for (size_t r = 0; r < kTileRows; ++r) wv[r] = Panel::Weights(half_rows + static_cast<int64_t>(r) * row_stride, c, half, s);
        for (size_t m = 0; m < kInputs; ++m) {
          const VF xv = hn::Load(df, x + static_cast<int64_t>(m) * x_stride + at);
          for (size_t r = 0; r < kTileRows; ++r) acc[r][m][s] = hn::MulAdd(wv[r], xv, acc[r][m][s]);
        }
      }
    }
  }
  for (size_t r = 0; r < kTileRows; ++r) {
    for (size_t m = 0; m < kInputs; ++m) {
      for (size_t s = 0; s < kSub; ++s) hn::Store(acc[r][m][s], df, chains + ((r * kTileInputs + m) * kDotChains + s * kN));
    }
  }
}

// GemmBlock for `inputs` <= kInputs input rows.
template <class Panel, size_t kInputs = kTileInputs>
HWY_INLINE void GemmAnyBlock(size_t inputs, const typename Panel::Word* rows, int64_t row_stride, const float* x,
                             int64_t x_stride, int64_t c_begin, int64_t c_end, bool first, float* chains) {
  if constexpr (kInputs > 1) {
    if (inputs < kInputs) {
      return GemmAnyBlock<Panel, kInputs - 1>(inputs, rows, row_stride, x, x_stride, c_begin, c_end, first, chains);
    }
  }
  GemmBlock<kInputs, Panel>(rows, row_stride, x, x_stride, c_begin, c_end, first, chains);
}

// The calling thread's buffers, reused across calls: the decoded panel
// (PanelRows(stride) x stride words) and the chains of its tiles.
struct GemmBuffers {
  hwy::AlignedFreeUniquePtr<uint32_t[]> panel;
  int64_t panel_words = 0;
  hwy::AlignedFreeUniquePtr<float[]> chains;
};
inline GemmBuffers& ThreadGemmBuffers(int64_t panel_words) {
  static thread_local GemmBuffers buffers;
  if (buffers.panel_words < panel_words) {
    buffers.panel_words = panel_words;
    buffers.panel = hwy::AllocateAligned<uint32_t>(static_cast<size_t>(panel_words));
  }
  if (!buffers.chains) buffers.chains = hwy::AllocateAligned<float>(kMaxPanelRows / kTileRows * kTileChains);
  return buffers;
}

// Rows [r, r + count) of w into panel rows [0, count), their positions past
// w.cols and the panel's other rows (up to panel_rows) zero.
template <class Codec, class Panel, class Scales>
HWY_INLINE void DecodePanel(const WeightMatrix& w, const Scales& scales, int64_t r, int64_t count,
                            int64_t panel_rows, int64_t stride, typename Panel::Word* HWY_RESTRICT panel) {
  static_assert(kGroupCols % Codec::kCols == 0 && Codec::kVecs * kGroupCols / Codec::kCols == 2 * kSub,
                "a group is whole decode steps");
  const int64_t row_bytes = w.cols * Codec::kBitsPerCol / 8, padded = PaddedCols(w.cols);
  for (int64_t i = 0; i < panel_rows; ++i) {
    typename Panel::Word* HWY_RESTRICT out = panel + i * stride;
    if (i >= count) {
      std::fill(out, out + stride, typename Panel::Word{0});
      continue;
    }
    const uint8_t* row = RowBytes(w, Codec::kBitsPerCol, r + i);
    const typename Scales::Row row_scales = scales.ForRow(r + i);
    StepScales<Codec, 1, typename Scales::Row> step_scales(&row_scales, w.block_cols);
    for (int64_t c = 0; c < padded; c += kGroupCols) {
      VF weights[2 * kSub];
      for (int64_t step = c; step < c + kGroupCols; step += Codec::kCols) {
        VF* out_step = weights + (step - c) / Codec::kCols * static_cast<int64_t>(Codec::kVecs);
        if (step >= w.cols) {
          for (size_t v = 0; v < Codec::kVecs; ++v) out_step[v] = hn::Zero(DF());
          continue;
        }
        step_scales.At(step);
        if (step + Codec::kCols <= w.cols) {
          DecodeStep<Codec, /*kTail=*/false>(row, row_bytes, step, step_scales.scale[0], out_step);
        } else {
          DecodeStep<Codec, /*kTail=*/true>(row, row_bytes, step, step_scales.scale[0], out_step);
        }
      }
      Panel::StoreGroup(weights, c, out);
    }
  }
}

template <class Codec, class Panel, class Scales>
void GemmWithPanel(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  const int64_t padded = PaddedCols(w.cols), x_stride = RowStride(w.cols), stride = Panel::Stride(w.cols);
  const int64_t panel_rows = std::min(PanelRows(stride), (r_end - r_begin + 15) / 16 * 16);
  GemmBuffers& buffers = ThreadGemmBuffers(panel_rows * stride);
  typename Panel::Word* HWY_RESTRICT panel = reinterpret_cast<typename Panel::Word*>(buffers.panel.get());
  float* HWY_RESTRICT chains = buffers.chains.get();
  for (int64_t r0 = r_begin; r0 < r_end; r0 += panel_rows) {
    const int64_t count = std::min(panel_rows, r_end - r0);
    DecodePanel<Codec, Panel>(w, scales, r0, count, panel_rows, stride, panel);
    const int64_t tiles = (count + static_cast<int64_t>(kTileRows) - 1) / static_cast<int64_t>(kTileRows);
    for (int64_t m0 = 0, inputs; m0 < job.batch; m0 += inputs) {
      inputs = TileInputsAt(m0, job.batch);
      const float* x = job.packed + m0 * x_stride;
      for (int64_t c0 = 0; c0 < padded; c0 += kBlockCols) {
        const int64_t c_end = std::min(c0 + kBlockCols, padded);
        for (int64_t t = 0; t < tiles; ++t) {
          GemmAnyBlock<Panel>(static_cast<size_t>(inputs), panel + t * static_cast<int64_t>(kTileRows) * stride, stride,
                              x, x_stride, c0, c_end, c0 == 0, chains + t * kTileChains);
        }
      }
      // Each input's outputs, kN rows at a time (sums of rows past `count`
      // are not stored).
      for (int64_t m = 0; m < inputs; ++m) {
        for (int64_t first = 0; first < count; first += static_cast<int64_t>(kN)) {
          const float* row_chains[kN];
          for (size_t i = 0; i < kN; ++i) {
            const int64_t row = first + static_cast<int64_t>(i);
            const int64_t t = row / static_cast<int64_t>(kTileRows), r = row % static_cast<int64_t>(kTileRows);
            row_chains[i] = chains + t * kTileChains + (r * static_cast<int64_t>(kTileInputs) + m) * kDotChains;
          }
          // The valid lanes in one masked store.
          const size_t valid = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(kN), count - first));
          hn::BlendedStore(SumChainsSideBySide(row_chains), hn::FirstN(DF(), valid), DF(),
                           job.y + (m0 + m) * w.rows + r0 + first);
        }
      }
    }
  }
}

template <class Codec, class Scales>
void Gemm(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  if (ExactInBf16<Codec>(scales)) return GemmWithPanel<Codec, Bf16PairPanel>(job, scales, r_begin, r_end);
  GemmWithPanel<Codec, F32Panel>(job, scales, r_begin, r_end);
}

// ------------------------------------------------------------------ Entry points

template <class Codec, class Scales>
void RunFormat(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  static_assert(kMaxMatVecInputs == 4, "one case per input count");
  switch (job.batch) {
    case 1:
      return MatVec<Codec, 1>(job, scales, r_begin, r_end);
    case 2:
      return MatVec<Codec, 2>(job, scales, r_begin, r_end);
    case 3:
      return MatVec<Codec, 3>(job, scales, r_begin, r_end);
    case 4:
      return MatVec<Codec, 4>(job, scales, r_begin, r_end);
    default:
      return Gemm<Codec>(job, scales, r_begin, r_end);
  }
}

inline void MatMulRows(const MatMulJob& job, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  switch (w.format) {
    case WeightFormat::kF32:
      return RunFormat<F32Codec>(job, NoScales(), r_begin, r_end);
    case WeightFormat::kBF16:
      return RunFormat<BF16Codec>(job, NoScales(), r_begin, r_end);
    case WeightFormat::kE4M3Blocked: {
      // A decode step must not straddle two scale blocks.
      if (w.block_cols % E4M3Codec::kCols != 0) return ExactRows(job, r_begin, r_end);
      const ScaledTileRange range = RangeOfTileScales(job);
      if (!TileScalesFit(range)) return ExactRows(job, r_begin, r_end);
      return RunFormat<E4M3Codec>(
          job, TileScales{job.tile_scales, w.block_rows, w.ScaleCols(), w.scale_row_offset, range}, r_begin, r_end);
    }
    case WeightFormat::kE2M1Grouped:
      if (w.block_cols != E2M1Codec::kCols) return ExactRows(job, r_begin, r_end);
      return RunFormat<E2M1Codec>(job, GroupScales{w.scales, w.ScaleCols()}, r_begin, r_end);
  }
}

// Every kernel reads the input rows packed: [batch][RowStride(cols)] in
// position order, zeros past the row's end.
inline int64_t PlanPacking(const MatMulJob& job) { return job.w->cols > 0 ? job.batch * RowStride(job.w->cols) : 0; }

inline void PackInput(const MatMulJob& job, int64_t m_begin, int64_t m_end) {
  const int64_t cols = job.w->cols, stride = RowStride(cols);
  const bool two_per_byte = job.w->format == WeightFormat::kE2M1Grouped;
  for (int64_t m = m_begin; m < m_end; ++m) {
    const float* HWY_RESTRICT in = job.x + m * cols;
    float* HWY_RESTRICT out = job.packed + m * stride;
    std::fill(out + cols, out + stride, 0.0f);
    if (!two_per_byte) {
      std::memcpy(out, in, static_cast<size_t>(cols) * sizeof(float));
      continue;
    }
    // Columns 2i and 2i + 1 of a group at positions i and 16 + i: the even
    // and odd lanes of each pair of vectors in whole groups; the last group
    // column by column, its missing columns zeros.
    constexpr int64_t kHalf = kGroupCols / 2;
    const DF df;
    int64_t g = 0;
    for (; g + kGroupCols <= cols; g += kGroupCols) {
      for (int64_t k = 0; k < kHalf; k += static_cast<int64_t>(kN)) {
        const VF first = hn::LoadU(df, in + g + 2 * k), second = hn::LoadU(df, in + g + 2 * k + static_cast<int64_t>(kN));
        hn::Store(hn::ConcatEven(df, second, first), df, out + g + k);
        hn::Store(hn::ConcatOdd(df, second, first), df, out + g + kHalf + k);
      }
    }
    for (; g < cols; g += kGroupCols) {
      for (int64_t i = 0; i < kHalf; ++i) {
        const int64_t c = g + 2 * i;
        out[g + i] = c < cols ? in[c] : 0.0f;
        out[g + kHalf + i] = c + 1 < cols ? in[c + 1] : 0.0f;
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
