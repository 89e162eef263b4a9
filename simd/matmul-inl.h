// Per-target bodies of MatMul (simd/matmul.cc includes this once per Highway
// target through hwy/foreach_target.h and dispatches at run time).
//
// Every output is the reference's own chain, bit for bit, at every batch
// size and on every target: the lanes of an accumulator are weight rows, and
// each step is one fused multiply-add of the exactly decoded weights of one
// column, the broadcast input and the accumulator, in column order
// (SequentialDot's chain: one rounding per step; this file is compiled with
// -ffp-contract=off, so the compiler fuses nothing else). Two kernels compute
// that chain:
// - matvec (batch <= 4): memory-bound, so every weight is decoded in
//   registers, turned into lanes = rows in registers and used at once, with
//   several groups of rows in flight to hide the latency of the adds and the
//   rows prefetched ahead;
// - GEMM (batch >= 5): compute-bound, so a panel of weights is decoded once
//   into a cache-resident f32 tile and a register-blocked micro-kernel reuses
//   every decoded weight for all input rows, which are first copied into a
//   "packed" buffer, column-major per tile of input rows.

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
#include <utility>
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
using VU = hn::Vec<DU>;
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

// ------------------------------------------------------------------ E8M0 table

// E8M0 code -> scale, exactly as E8M0ToF32.
inline const float* E8M0Values() {
  static const struct Table {
    float value[256];
    Table() {
      for (int e = 0; e < 256; ++e) value[e] = E8M0ToF32(static_cast<uint8_t>(e));
    }
  } table;
  return table.value;
}

// ------------------------------------------------------------------ Codecs
//
// A codec decodes weights two ways, each as value * a power of two chosen so
// that decoding is cheapest (scaled formats then apply one scale per block of
// block_cols columns):
// - Decode (GEMM panels): kCols consecutive columns of one row into kVecs
//   vectors, in packed column order, as value * kFactor;
// - Column<n> (matvec, lanes = rows): `word` holds in lane i 32 bits of row
//   i, 32 / kBitsPerCol consecutive columns; Column<n> is the n-th of them in
//   every lane, as value * kWordFactor.

struct F32Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 32;
  static constexpr bool kScaled = false;
  static constexpr float kFactor = 1.0f;
  static constexpr float kWordFactor = 1.0f;
  static constexpr int PackedSource(int i) { return i; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const float* p = reinterpret_cast<const float*>(row) + c;
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::LoadU(df, p + k * kN);
  }

  template <size_t n>
  static HWY_INLINE VF Column(VU word) {
    return hn::BitCast(DF(), word);
  }
};

struct BF16Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 16;
  static constexpr bool kScaled = false;
  static constexpr float kFactor = 1.0f;
  static constexpr float kWordFactor = 1.0f;
  static constexpr int PackedSource(int i) { return i; }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    const DF df;
    const hn::Rebind<hwy::bfloat16_t, DF> dbf;
    const hwy::bfloat16_t* p = reinterpret_cast<const hwy::bfloat16_t*>(row) + c;
    for (size_t k = 0; k < kVecs; ++k) out[k] = hn::PromoteTo(df, hn::LoadU(dbf, p + k * kN));
  }

  // A bf16 is the upper half of its f32: the first column of the lane is its
  // lower half, the second its upper half.
  template <size_t n>
  static HWY_INLINE VF Column(VU word) {
    if constexpr (n == 0) {
      return hn::BitCast(DF(), hn::ShiftLeft<16>(word));
    } else {
      return hn::BitCast(DF(), hn::And(word, hn::Set(DU(), 0xFFFF0000u)));
    }
  }
};

// float8_e4m3fn through IEEE half precision: sign-extend each byte into a
// 16-bit lane and shift it left by 7, which puts exponent and mantissa where
// an f16 keeps them and the sign in bit 15; clear the copy of the sign that
// lands in bit 14 and the lane is the f16 of value * 2^-8, subnormal codes
// included (they become f16 subnormals). vcvtph2ps widens it to f32 exactly.
// The NaN codes 0x7F/0xFF decode as +-480 (times the factor) instead of NaN
// in both decoders; checkpoints never contain them.
//
// Column<n> makes the same f16 in the 16-bit halves of every lane: byte n
// moved to the top of its half and shifted right arithmetically by one, bit
// 14 and the other byte cleared; the halves that hold byte n are then packed
// into one vector and widened. (Building the f32 bits directly, value *
// 2^-120, turns the subnormal codes into f32 subnormals, and multiplying
// those into normal products is slow on AMD cores: a stand-alone loop of the
// matvec's ran 2.5x slower with them.) The matvec multiplies the tile scales
// by 2^8 instead of every weight, which needs scales below 2^120
// (TileScalesFitMatVec).
struct E4M3Codec {
  static constexpr size_t kVecs = 2;
  static constexpr size_t kCols = kVecs * kN;
  static constexpr int kBitsPerCol = 8;
  static constexpr bool kScaled = true;
  static constexpr float kFactor = 1.0f / 256.0f;
  static constexpr float kWordFactor = kFactor;
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

  template <size_t n>
  static HWY_INLINE VF Column(VU word) {
    const hn::Repartition<int16_t, DF> d16;
    const auto halves = hn::BitCast(d16, word);
    const auto top = n % 2 == 0 ? hn::ShiftLeft<8>(halves) : halves;
    const auto f16 = hn::And(hn::ShiftRight<1>(top), hn::Set(d16, static_cast<int16_t>(0xBF80)));
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // 16-bit lane 2i + n / 2 of every 32-bit lane i, in order (vpermw).
    alignas(64) static constexpr int16_t kHalf[2][32] = {
        {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
    const __m256i packed =
        _mm512_castsi512_si256(_mm512_permutexvar_epi16(hn::Load(d16, kHalf[n / 2]).raw, f16.raw));
#else
    // The same per 128-bit block (pshufb), then the two blocks' halves side
    // by side (vpermq).
    alignas(32) static constexpr int8_t kHalf[2][32] = {
        {0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1, 0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1},
        {2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, 2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1}};
    const __m256i blocks = _mm256_shuffle_epi8(f16.raw, _mm256_load_si256(reinterpret_cast<const __m256i*>(kHalf[n / 2])));
    const __m128i packed = _mm256_castsi256_si128(_mm256_permute4x64_epi64(blocks, 0x08));
#endif
    return hn::PromoteTo(DF(), hn::Vec<hn::Rebind<hwy::float16_t, DF>>{packed});
  }
};

// E2M1, one group of 32 columns (16 bytes, element 2j in the low nibble).
#if DSV4_MATMUL_FP4_PERMPS
// Zero-extend the 16 bytes into 32-bit lanes; vpermps looks only at the low
// four bits of each index lane, so the byte itself indexes a 16-entry table
// of E2M1 values with its low nibble, and the byte shifted right by four with
// its high nibble. Packed order: the 16 even columns, then the 16 odd ones.
// Column<n> indexes the same table with the lane shifted right by 4n.
struct E2M1Codec {
  static constexpr size_t kVecs = 32 / kN;
  static constexpr size_t kCols = 32;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;
  static constexpr float kFactor = 1.0f;
  static constexpr float kWordFactor = 1.0f;

  static constexpr int PackedSource(int i) { return i < 16 ? 2 * i : 2 * (i - 16) + 1; }

  static HWY_INLINE VF Values() {
    alignas(64) static constexpr float kValues[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                                      -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
    return hn::Load(DF(), kValues);
  }

  static HWY_INLINE void Decode(const uint8_t* HWY_RESTRICT row, int64_t c, VF* out) {
    static_assert(kN == 16, "one 512-bit vector per 16 bytes");
    const DU du;
    const hn::Rebind<uint8_t, DF> d8;
    const VF table = Values();
    const auto bytes = hn::PromoteTo(du, hn::LoadU(d8, row + c / 2));
    out[0] = VF{_mm512_permutexvar_ps(bytes.raw, table.raw)};
    out[1] = VF{_mm512_permutexvar_ps(hn::ShiftRight<4>(bytes).raw, table.raw)};
  }

  template <size_t n>
  static HWY_INLINE VF Column(VU word) {
    return VF{_mm512_permutexvar_ps(hn::ShiftRight<4 * n>(word).raw, Values().raw)};
  }
};
#else
// Duplicate the 16 bytes into both 128-bit blocks, keep the low nibbles in
// block 0 and the high nibbles in block 1, map the nibbles to 2 * value as
// int8 with one pshufb, then spread four bytes of each block into the top
// byte of 32-bit lanes (pshufb again) and convert: each f32 is value * 2^25.
//
// Column<n> takes the magnitude of nibble n from an 8-entry table (vpermps
// looks only at the low three bits of each index) and its sign bit from the
// nibble's top bit.
struct E2M1Codec {
  static constexpr size_t kVecs = 4;
  static constexpr size_t kCols = 32;
  static constexpr int kBitsPerCol = 4;
  static constexpr bool kScaled = true;
  static constexpr float kFactor = 33554432.0f;  // 2^25
  static constexpr float kWordFactor = 1.0f;

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

  template <size_t n>
  static HWY_INLINE VF Column(VU word) {
    alignas(32) static constexpr float kMagnitudes[8] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
    const DU du;
    const VF magnitude{_mm256_permutevar8x32_ps(hn::Load(DF(), kMagnitudes).raw, hn::ShiftRight<4 * n>(word).raw)};
    const VU sign = hn::And(hn::ShiftLeft<28 - 4 * n>(word), hn::Set(du, 0x80000000u));
    return hn::Or(magnitude, hn::BitCast(DF(), sign));
  }
};
#endif


// ------------------------------------------------------------------ Helpers

inline const uint8_t* RowBytes(const WeightMatrix& w, int bits_per_col, int64_t r) {
  return w.data + r * (w.cols * bits_per_col / 8);
}

// y[m][r] for every m exactly as MatMulReference computes it: the path for
// scale blocks the fast kernels do not cover.
inline void ExactRows(const MatMulJob& job, int64_t r_begin, int64_t r_end) {
  const WeightMatrix& w = *job.w;
  std::vector<float> row(w.cols);
  for (int64_t r = r_begin; r < r_end; ++r) {
    DecodeRow(w, r, row.data());
    for (int64_t m = 0; m < job.batch; ++m) job.y[m * w.rows + r] = SequentialDot(row.data(), job.x + m * w.cols, w.cols);
  }
}

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

// acc[m] = fma(w, x[m][c], acc[m]) for each input m: one link of the
// reference's chain.
template <size_t kInputs>
HWY_INLINE void Link(VF w, const float* HWY_RESTRICT x, int64_t x_stride, int64_t c, VF* acc) {
  const DF df;
  for (size_t m = 0; m < kInputs; ++m) acc[m] = hn::MulAdd(w, hn::Set(df, x[m * x_stride + c]), acc[m]);
}

// The matvec reads row-major bytes (weights, E2M1 scale codes) a cache line
// per row at a time, in lanes = rows.
constexpr int64_t kLineBytes = 64;
constexpr size_t kLineWords = kLineBytes / 4;

// The line at `offset` of rows[0, kN), each row_bytes long, in lanes = rows:
// words[k] lane i holds bytes offset + 4k .. offset + 4k + 3 of row i, zeros
// past the row's end. One load per vector of each row's line (one on AVX3,
// two on AVX2), then the 32-bit words transposed in registers.
HWY_INLINE void LoadLine(const uint8_t* const* rows, int64_t offset, int64_t row_bytes, VU* words) {
  const DF df;
  alignas(64) uint8_t tail[kN][kLineBytes];
  const uint8_t* from[kN];
  for (size_t i = 0; i < kN; ++i) from[i] = rows[i] + offset;
  if (offset + kLineBytes > row_bytes) {
    for (size_t i = 0; i < kN; ++i) {
      std::memset(tail[i], 0, kLineBytes);
      std::memcpy(tail[i], from[i], row_bytes - offset);
      from[i] = tail[i];
    }
  }
  for (size_t half = 0; half < kLineWords / kN; ++half) {
    VF in[kN], out[kN];
    for (size_t i = 0; i < kN; ++i) in[i] = hn::LoadU(df, reinterpret_cast<const float*>(from[i]) + half * kN);
    Transpose(in, out);
    for (size_t k = 0; k < kN; ++k) words[half * kN + k] = hn::BitCast(DU(), out[k]);
  }
}

// E8M0 codes (lanes < 256) -> scales, exactly as E8M0ToF32: the code is the
// f32 exponent, except that 0 (2^-127, a subnormal) and 255 (NaN) also set
// mantissa bit 22.
HWY_INLINE VF E8M0Lanes(VU code) {
  const DU du;
  const auto edge = hn::Or(hn::Eq(code, hn::Zero(du)), hn::Eq(code, hn::Set(du, 255u)));
  return hn::BitCast(DF(), hn::Or(hn::ShiftLeft<23>(code), hn::IfThenElseZero(edge, hn::Set(du, 0x00400000u))));
}

// ------------------------------------------------------------------ Scales
//
// Where a format's scales come from: ForRow(r)[b] is the scale of row r and
// column block b. Scaled formats also give the matvec Lanes(rows): the
// scales of kN rows in lanes = rows, At(b) for column blocks b = 0, 1, ...
// in order.

struct NoScales {
  struct Row {
    float operator[](int64_t) const { return 1.0f; }
  };
  Row ForRow(int64_t) const { return Row(); }
  struct Lanes {
    VF At(int64_t) const { return hn::Set(DF(), 1.0f); }
  };
  Lanes LanesOf(const int64_t*) const { return Lanes(); }
};

struct TileScales {  // E4M3: one f32 scale per block_rows x block_cols tile
  const float* scales;
  int64_t block_rows, scale_cols;
  int64_t row_offset;  // WeightMatrix::scale_row_offset of a row slice
  struct Row {
    const float* scales;
    float operator[](int64_t b) const { return scales[b]; }
  };
  Row ForRow(int64_t r) const { return Row{scales + ((r + row_offset) / block_rows) * scale_cols}; }

  // A group of rows rarely straddles two tile rows: then one scale.
  struct Lanes {
    Row rows[kN];
    VF At(int64_t b) const {
      if (rows[0].scales == rows[kN - 1].scales) return hn::Set(DF(), rows[0][b]);
      alignas(64) float lanes[kN];
      for (size_t i = 0; i < kN; ++i) lanes[i] = rows[i][b];
      return hn::Load(DF(), lanes);
    }
  };
  Lanes LanesOf(const int64_t* rows) const {
    Lanes lanes;
    for (size_t i = 0; i < kN; ++i) lanes.rows[i] = ForRow(rows[i]);
    return lanes;
  }
};

struct GroupScales {  // E2M1: one E8M0 code per row and 32 columns
  const uint8_t* codes;
  int64_t scale_cols;
  const float* values;  // E8M0Values()
  struct Row {
    const uint8_t* codes;
    const float* values;
    float operator[](int64_t b) const { return values[codes[b]]; }
  };
  Row ForRow(int64_t r) const { return Row{codes + r * scale_cols, values}; }

  // The codes are a byte matrix of their own, read as the weights are: a
  // line (64 codes) of every row at a time.
  struct Lanes {
    const uint8_t* rows[kN];
    int64_t scale_cols;
    int64_t line = -1;  // of `words`
    VU words[kLineWords];
    VF At(int64_t b) {
      if (b / kLineBytes != line) {
        line = b / kLineBytes;
        LoadLine(rows, line * kLineBytes, scale_cols, words);
      }
      const VU word = words[(b % kLineBytes) / 4];
      return E8M0Lanes(hn::And(hn::ShiftRightSame(word, static_cast<int>(8 * (b % 4))), hn::Set(DU(), 0xFFu)));
    }
  };
  Lanes LanesOf(const int64_t* rows) const {
    Lanes lanes;
    for (size_t i = 0; i < kN; ++i) lanes.rows[i] = codes + rows[i] * scale_cols;
    lanes.scale_cols = scale_cols;
    return lanes;
  }
};

// The matvec folds E4M3Codec::kWordFactor into the tile scales (exact while
// the product is finite): scales from 2^120 on, never in a real checkpoint,
// take the exact fallback. A few thousand floats per matrix at most.
inline bool TileScalesFitMatVec(const MatMulJob& job) {
  const WeightMatrix& w = *job.w;
  const int64_t count = w.ScaleRows() * w.ScaleCols();
  for (int64_t i = 0; i < count; ++i) {
    if (std::isinf(job.tile_scales[i] / E4M3Codec::kWordFactor)) return false;
  }
  return true;
}

// ------------------------------------------------------------------ Matvec
//
// A pass computes kGroups groups of kN consecutive rows (16 rows, see
// kMatVecGroups) for kInputs input rows, which it reads in place (unpacked).
// It walks the rows a cache line (64 bytes: 16 to 128 columns by format) at a
// time: each group loads the line of each of its rows in lanes = rows
// (LoadLine: word k lane i = bytes 4k..4k+3 of row i's line), the codec
// decodes each column of a word in place (Column<n>), and the column, scaled
// to the exact weights, is multiplied by the broadcast input and added to the
// group's accumulators, in column order. Groups take turns word by word, so
// that their independent chains hide each other's add latency.
//
// Measured on the way (Zen 5, weights in L2 unless said): transposing
// decoded vectors instead, as the GEMM's panels do, costs a transpose per
// vector of weights rather than per vector of bytes (FP4 2-6 GB/s); loading
// 16 bytes per row at a time reloaded each line from L2 four times, as rows
// 4 KiB apart share an L1 set (half the speed); gathering the E2M1 scales
// (vpgatherdd, microcoded on AMD cores) took a third of the FP4 time.

// Links column c + kCol of a word (lane i: 32 bits of row i) into acc, in
// a row's last line only if it lies before `valid`: decoded, unfactored and
// scaled to the exact weight as DecodeRow computes it (a power of two times a
// value of at most four significant bits: the products are exact), then
// multiplied by each input and added.
template <class Codec, size_t kInputs, bool kLast, size_t kCol>
HWY_INLINE void LinkColumn(VU word, VF scale, const float* HWY_RESTRICT x, int64_t x_stride, int64_t c,
                           int64_t valid, VF* acc) {
  static_assert(Codec::kScaled || Codec::kWordFactor == 1.0f, "the scale removes the factor");
  if (kLast && static_cast<int64_t>(kCol) >= valid) return;
  VF w = Codec::template Column<kCol>(word);
  if constexpr (Codec::kScaled) w = hn::Mul(w, scale);
  Link<kInputs>(w, x, x_stride, c + static_cast<int64_t>(kCol), acc);
}

template <class Codec, size_t kInputs, bool kLast, size_t... kCol>
HWY_INLINE void LinkWord(VU word, VF scale, const float* HWY_RESTRICT x, int64_t x_stride, int64_t c, int64_t valid,
                         VF* acc, std::index_sequence<kCol...>) {
  (LinkColumn<Codec, kInputs, kLast, kCol>(word, scale, x, x_stride, c, valid, acc), ...);
}

// The weight rows of a pass's kGroups row groups.
template <size_t kGroups>
struct Lines {
  const uint8_t* rows[kGroups][kN];
  int64_t row_bytes;
  // The rows of the next pass, which follow this pass's in memory: its
  // lines are prefetched into L2 in address order, a pass ahead, as many per
  // line of this pass as it has rows. One sequential stream keeps DRAM and
  // the hardware prefetchers efficient where the rows of a pass, read side by
  // side, would be as many streams (measured with the former per-row
  // prefetch: single-thread FP8 7 GB/s from DRAM against 13 from L2).
  const uint8_t* next_pass;
};

// Words of one line of every group (LoadLine), taken word by word from
// here: a whole line in registers leaves too few for the rest, and code
// unrolled for a whole line outgrows the caches of decoded instructions
// (2-3x slower, both).
template <size_t kGroups>
using LineWords = VU[kGroups][kLineWords];

template <size_t kGroups>
HWY_INLINE void LoadLines(const Lines<kGroups>& lines, int64_t offset, LineWords<kGroups>& words) {
  for (size_t g = 0; g < kGroups; ++g) {
    const uint8_t* ahead = lines.next_pass + (offset / kLineBytes * kGroups + g) * kN * kLineBytes;
    for (size_t i = 0; i < kN; ++i) __builtin_prefetch(ahead + i * kLineBytes, /*rw=*/0, /*locality=*/2);  // prefetcht1
    LoadLine(lines.rows[g], offset, lines.row_bytes, words[g]);
  }
}

// The scale lanes of a group, its current scales and the byte offset at
// which the next scale block starts.
template <class Lanes>
struct RunningScale {
  Lanes lanes;
  VF scale;
  int64_t next_block = 0;
};

// The current line of every group (at byte `offset` of the rows, whose
// first column is c), in a row's last line only its columns below `cols`.
template <class Codec, size_t kInputs, bool kLast, size_t kGroups, class Lanes>
HWY_INLINE void LinkLine(const LineWords<kGroups>& words, RunningScale<Lanes> (&scales)[kGroups], int64_t block_bytes,
                         int64_t offset, int64_t c, int64_t cols, const float* HWY_RESTRICT x,
                         VF (&acc)[kGroups][kInputs]) {
  constexpr int64_t kWordCols = 32 / Codec::kBitsPerCol;
  const VF unfactor = hn::Set(DF(), 1.0f / Codec::kWordFactor);
  // Scale blocks span whole 16-byte chunks (MatMulRows checks).
  for (size_t chunk = 0; chunk < kLineWords; chunk += 4) {
    if (kLast && c + static_cast<int64_t>(chunk) * kWordCols >= cols) break;
    if (Codec::kScaled && offset + 4 * static_cast<int64_t>(chunk) == scales[0].next_block) {
      HWY_UNROLL(8)
      for (size_t g = 0; g < kGroups; ++g) {
        scales[g].scale = hn::Mul(scales[g].lanes.At(scales[g].next_block / block_bytes), unfactor);
        scales[g].next_block += block_bytes;
      }
    }
    HWY_UNROLL(1)
    for (size_t k = chunk; k < chunk + 4; ++k) {
      const int64_t at = c + static_cast<int64_t>(k) * kWordCols;
      HWY_UNROLL(8)
      for (size_t g = 0; g < kGroups; ++g) {
        LinkWord<Codec, kInputs, kLast>(words[g][k], scales[g].scale, x, cols, at, cols - at, acc[g],
                                        std::make_index_sequence<kWordCols>());
      }
    }
  }
}

// y[m][r, min(r + kGroups * kN, r_end)) for m < kInputs; lanes past r_end
// repeat the last row and are not stored.
template <class Codec, size_t kInputs, size_t kGroups, class Scales>
HWY_NOINLINE void MatVecPass(const MatMulJob& job, const Scales& scales, int64_t r, int64_t r_end) {
  constexpr int64_t kRows = static_cast<int64_t>(kGroups * kN);
  constexpr int64_t kLineCols = kLineBytes * 8 / Codec::kBitsPerCol;
  const DF df;
  const WeightMatrix& w = *job.w;
  const int64_t cols = w.cols;
  const int64_t block_bytes = Codec::kScaled ? w.block_cols * Codec::kBitsPerCol / 8 : 0;
  Lines<kGroups> lines;
  lines.row_bytes = cols * Codec::kBitsPerCol / 8;
  RunningScale<typename Scales::Lanes> group_scales[kGroups];
  VF acc[kGroups][kInputs];
  for (size_t g = 0; g < kGroups; ++g) {
    int64_t rows[kN];
    for (size_t i = 0; i < kN; ++i) {
      rows[i] = std::min<int64_t>(r + static_cast<int64_t>(g * kN + i), r_end - 1);
      lines.rows[g][i] = RowBytes(w, Codec::kBitsPerCol, rows[i]);
    }
    group_scales[g].lanes = scales.LanesOf(rows);
    group_scales[g].scale = hn::Set(df, 1.0f);  // read only by scaled formats, after their first block
    for (size_t m = 0; m < kInputs; ++m) acc[g][m] = hn::Zero(df);
  }
  lines.next_pass = lines.rows[0][0] + kRows * lines.row_bytes;
  // Each line is loaded while the one before it is computed on.
  LineWords<kGroups> words[2];
  size_t current = 0;
  LoadLines(lines, 0, words[0]);
  int64_t offset = 0;
  for (; offset + kLineBytes <= lines.row_bytes; offset += kLineBytes, current ^= 1) {
    if (offset + kLineBytes < lines.row_bytes) LoadLines(lines, offset + kLineBytes, words[current ^ 1]);
    LinkLine<Codec, kInputs, /*kLast=*/false>(words[current], group_scales, block_bytes, offset,
                                              offset / kLineBytes * kLineCols, cols, job.x, acc);
  }
  if (offset < lines.row_bytes) {
    LinkLine<Codec, kInputs, /*kLast=*/true>(words[current], group_scales, block_bytes, offset,
                                             offset / kLineBytes * kLineCols, cols, job.x, acc);
  }
  for (size_t g = 0; g < kGroups; ++g) {
    const int64_t first = r + static_cast<int64_t>(g * kN);
    const int64_t valid = std::min<int64_t>(kN, r_end - first);
    for (size_t m = 0; m < kInputs; ++m) {
      float* HWY_RESTRICT y = job.y + m * w.rows + first;
      if (valid == static_cast<int64_t>(kN)) {
        hn::StoreU(acc[g][m], df, y);
      } else if (valid > 0) {
        alignas(64) float lanes_out[kN];
        hn::Store(acc[g][m], df, lanes_out);
        std::memcpy(y, lanes_out, valid * sizeof(float));
      }
    }
  }
}

constexpr int64_t kMaxMatVecInputs = 4;

// 16 rows per pass (one group on AVX3, two on AVX2), however many chains
// that leaves (groups x inputs) to hide the latency of the adds. Rows whose
// length is a multiple of 4 KiB (most weights) start in the same L1 set;
// measured on Zen 5 with the lines in L2, loads of 16 such rows side by side
// stream at 115 GB/s, of 32 at 31 GB/s and of 64 at 21 GB/s (the L1 and its
// prefetchers lose track), and from DRAM one group of 16 rows beat two or
// four whatever the row length (2 threads, FP8 wq_b 30 against 19-26 GB/s,
// FP4 w1 19 against 14-17).
constexpr size_t kMatVecGroups = 16 / kN;

// Rows [r_begin, r_end) in passes of kGroups groups; the last rows take a
// pass of as few groups as hold them.
template <class Codec, size_t kInputs, size_t kGroups, class Scales>
void MatVec(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  constexpr int64_t kRows = static_cast<int64_t>(kGroups * kN);
  int64_t r = r_begin;
  for (; r + kRows <= r_end; r += kRows) MatVecPass<Codec, kInputs, kGroups>(job, scales, r, r_end);
  if (r == r_end) return;
  if constexpr (kGroups > 1) {
    if (r_end - r <= kRows - static_cast<int64_t>(kN)) return MatVec<Codec, kInputs, kGroups - 1>(job, scales, r, r_end);
  }
  MatVecPass<Codec, kInputs, kGroups>(job, scales, r, r_end);
}

// ------------------------------------------------------------------ GEMM
//
// Broadcast form: the lanes of an accumulator are consecutive weight rows of
// one input row, and step c adds w[rows][c] * x[m][c] in one fused
// multiply-add exactly as SequentialDot does. Every output is then the
// reference's chain in column order whatever the vector width, so batched
// results are bit-identical to MatMulReference on every target. (Until
// 2026-12-05 the chain rounded each product before the add: a mul and an add
// per step, which on Intel cores share the FMA ports and capped the GEMM near
// half the FMA peak.)
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
        for (size_t m = 0; m < kInputs; ++m) acc[m][v] = hn::MulAdd(wv, xv[m], acc[m][v]);
      }
    } else {
      VF wv[kVecs];
      for (size_t v = 0; v < kVecs; ++v) wv[v] = hn::Load(df, w + v * kN);
      for (size_t m = 0; m < kInputs; ++m) {
        const VF xv = hn::Set(df, xc[m]);
        for (size_t v = 0; v < kVecs; ++v) acc[m][v] = hn::MulAdd(wv[v], xv, acc[m][v]);
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

template <class Codec, class Scales>
void Gemm(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
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
          DecodeTransposed<Codec>(w, scales, r0 + first, r0 + rows, k0, depth, panel + t * kPanelCols + v * kN);
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
          const float* x = job.packed + m * w.cols + k0 * inputs;
          GemmAnyTile<kTileInputs>(static_cast<size_t>(inputs), vecs, x, tile, depth, y + m * w.rows, w.rows, k0 > 0,
                                   valid_rows);
        }
      }
    }
  }
}


// ------------------------------------------------------------------ Entry points

template <class Codec, class Scales>
void RunFormat(const MatMulJob& job, const Scales& scales, int64_t r_begin, int64_t r_end) {
  static_assert(kMaxMatVecInputs == 4, "one case per input count");
  switch (job.batch) {
    case 1:
      return MatVec<Codec, 1, kMatVecGroups>(job, scales, r_begin, r_end);
    case 2:
      return MatVec<Codec, 2, kMatVecGroups>(job, scales, r_begin, r_end);
    case 3:
      return MatVec<Codec, 3, kMatVecGroups>(job, scales, r_begin, r_end);
    case 4:
      return MatVec<Codec, 4, kMatVecGroups>(job, scales, r_begin, r_end);
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
    case WeightFormat::kE4M3Blocked:
      // A decode step must not straddle two scale blocks.
      if (w.block_cols % E4M3Codec::kCols != 0 || (job.batch <= kMaxMatVecInputs && !TileScalesFitMatVec(job))) {
        return ExactRows(job, r_begin, r_end);
      }
      return RunFormat<E4M3Codec>(job, TileScales{job.tile_scales, w.block_rows, w.ScaleCols(), w.scale_row_offset},
                                  r_begin, r_end);
    case WeightFormat::kE2M1Grouped:
      if (w.block_cols != E2M1Codec::kCols) return ExactRows(job, r_begin, r_end);
      return RunFormat<E2M1Codec>(job, GroupScales{w.scales, w.ScaleCols(), E8M0Values()}, r_begin, r_end);
  }
}

// The matvec reads the input rows in place. GEMM: per register tile of input
// rows (sizes from TileInputsAt), [column][input] in column order; the tile
// that starts at input row m starts at float m * w.cols.
inline int64_t PlanPacking(const MatMulJob& job) { return job.batch > kMaxMatVecInputs ? job.batch * job.w->cols : 0; }

inline void PackInput(const MatMulJob& job, int64_t m_begin, int64_t m_end) {
  const int64_t cols = job.w->cols;
  for (int64_t start = 0, inputs; start < m_end; start += inputs) {
    inputs = TileInputsAt(start, job.batch);
    for (int64_t m = std::max(start, m_begin); m < std::min(start + inputs, m_end); ++m) {
      const float* HWY_RESTRICT in = job.x + m * cols;
      float* HWY_RESTRICT out = job.packed + start * cols + (m - start);
      for (int64_t c = 0; c < cols; ++c) out[c * inputs] = in[c];
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
