// Per-target body of DecodeRowsBf16 (simd/bf16_weights.cc includes this once
// per Highway target). Every output equals DecodeRowsBf16Reference's bits:
// - E4M3: each byte sign-extended to 16 bits and shifted left by 7 is the
//   f16 of value * 2^-8 once the copy of the sign in bit 14 is cleared (as
//   in simd/matmul-inl.h); widened to f32 exactly and multiplied by the tile
//   scale * 2^8 it is DecodeRow's f32 (one rounding of the same product),
//   whose top half is the bf16.
// - E2M1: the scale adds to the exponent of the nonzero values. AVX-512
//   looks the 16 values up in one 16-bit permute per 32 columns; AVX2 works
//   in 128-bit blocks, so the byte shuffles keep the columns in order: the
//   low and high nibbles interleaved give the codes in column order, and two
//   16-entry tables give the high and low bytes of each bf16.
// Blocks whose scale would leave the exact range, and the columns after the
// last whole vector of a block, take the reference's scalar path.
#if defined(DSV4_SIMD_BF16_WEIGHTS_INL_H_TARGET) == defined(HWY_TARGET_TOGGLE)
#ifdef DSV4_SIMD_BF16_WEIGHTS_INL_H_TARGET
#undef DSV4_SIMD_BF16_WEIGHTS_INL_H_TARGET
#else
#define DSV4_SIMD_BF16_WEIGHTS_INL_H_TARGET
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "hwy/highway.h"
#include "simd/bf16_weights.h"
#include "simd/number_formats.h"

HWY_BEFORE_NAMESPACE();
namespace dsv4 {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Columns [c, end) of an E4M3 row with one scale; returns the first column
// it left to the caller.
inline int64_t Bf16E4M3Columns(const uint8_t* HWY_RESTRICT codes, uint8_t scale, int64_t c, int64_t end,
                           uint16_t* HWY_RESTRICT out) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int8_t, decltype(df)> di8;
  const hn::Rebind<int16_t, decltype(df)> di16;
  const hn::Rebind<hwy::float16_t, decltype(df)> df16;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const hn::RebindToSigned<decltype(df)> di32;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  // scale * 2^8 stays a finite f32 power of two up to code 246; code 0 is
  // 2^-127 (not a power-of-two f32 exponent field) and 255 is NaN.
  if (scale == 0 || scale > 246) return c;
  const auto factor = hn::Set(df, E8M0ToF32(scale) * 256.0f);
  const auto clear_bit14 = hn::Set(di16, static_cast<int16_t>(~0x4000));
  for (; c + lanes <= end; c += lanes) {
    const auto bytes = hn::LoadU(di8, reinterpret_cast<const int8_t*>(codes + c));
    const auto half_bits = hn::And(hn::ShiftLeft<7>(hn::PromoteTo(di16, bytes)), clear_bit14);
    const auto value = hn::Mul(hn::PromoteTo(df, hn::BitCast(df16, half_bits)), factor);
    const auto top = hn::BitCast(di32, hn::ShiftRight<16>(hn::BitCast(du32, value)));
    hn::StoreU(hn::DemoteTo(du16, top), du16, out + c);
  }
  return c;
}

// Exponent fields of E2M1's 0.5 .. 6 are 126 .. 129: with these scales the
// sum stays in [1, 254].
inline bool E2M1ScaleAddStaysNormal(uint8_t scale) { return scale >= 2 && scale <= 252; }

// Columns [c, end) of an E2M1 row (packed: byte c / 2) with one scale, c
// even; returns the first column it left to the caller.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// AVX-512 (BW): the 16 bf16 values of the codes, scaled once, are a 32-lane
// vpermw table; each byte zero-extended to 32 bits and rearranged as its low
// nibble in the low 16 bits and its high nibble in the high ones is a pair
// of indices in column order, so 32 columns take one lookup and one store.
inline int64_t Bf16E2M1Columns(const uint8_t* HWY_RESTRICT packed, uint8_t scale, int64_t c, int64_t end,
                               uint16_t* HWY_RESTRICT out) {
  // bf16 of 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
  alignas(64) static constexpr uint16_t kValues[32] = {0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0,
                                                       0x8000, 0xBF00, 0xBF80, 0xBFC0, 0xC000, 0xC040, 0xC080, 0xC0C0};
  if (!E2M1ScaleAddStaysNormal(scale)) return c;
  // The scale adds to the exponent of the nonzero values (not lanes 0 and 8: +-0).
  const __m512i table = _mm512_mask_add_epi16(_mm512_load_si512(kValues), __mmask32{0xFEFE}, _mm512_load_si512(kValues),
                                              _mm512_set1_epi16(static_cast<int16_t>((int{scale} - 127) * 128)));
  const __m512i low_nibble = _mm512_set1_epi32(0x0F), high_nibble = _mm512_set1_epi32(0xF0);
  for (; c + 32 <= end; c += 32) {
    const __m512i bytes = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + c / 2)));
    const __m512i codes = _mm512_or_si512(_mm512_and_si512(bytes, low_nibble),
                                          _mm512_slli_epi32(_mm512_and_si512(bytes, high_nibble), 12));
    _mm512_storeu_si512(out + c, _mm512_permutexvar_epi16(codes, table));
  }
  return c;
}
#else
inline int64_t Bf16E2M1Columns(const uint8_t* HWY_RESTRICT packed, uint8_t scale, int64_t c, int64_t end,
                           uint16_t* HWY_RESTRICT out) {
  const hn::Full128<uint8_t> d8;
  const hn::Full128<uint16_t> d16;
  // bf16 of 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives, split in bytes.
  alignas(16) static constexpr uint8_t kHigh[16] = {0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40,
                                                    0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0};
  alignas(16) static constexpr uint8_t kLow[16] = {0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0,
                                                   0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0};
  if (!E2M1ScaleAddStaysNormal(scale)) return c;
  const auto high = hn::Load(d8, kHigh), low = hn::Load(d8, kLow), nibble = hn::Set(d8, uint8_t{15});
  const auto add = hn::Set(d16, static_cast<uint16_t>((int{scale} - 127) * 128));
  const auto magnitude = hn::Set(d16, uint16_t{0x7FFF});
  const auto zero = hn::Zero(d16);
  for (; c + 32 <= end; c += 32) {
    const auto bytes = hn::LoadU(d8, packed + c / 2);
    const auto lo = hn::And(bytes, nibble);
    const auto hi = hn::ShiftRight<4>(hn::BitCast(d16, bytes));
    const auto hi_codes = hn::And(hn::BitCast(d8, hi), nibble);
    const decltype(bytes) codes[2] = {hn::InterleaveLower(d8, lo, hi_codes), hn::InterleaveUpper(d8, lo, hi_codes)};
    for (int part = 0; part < 2; ++part) {
      const auto h = hn::TableLookupBytes(high, codes[part]), l = hn::TableLookupBytes(low, codes[part]);
      const decltype(zero) halves[2] = {hn::ZipLower(d16, l, h), hn::ZipUpper(d16, l, h)};
      for (int i = 0; i < 2; ++i) {
        const auto v = halves[i];
        const auto scaled = hn::Add(v, hn::IfThenElseZero(hn::Ne(hn::And(v, magnitude), zero), add));
        hn::StoreU(scaled, d16, out + c + 16 * part + 8 * i);
      }
    }
  }
  return c;
}
#endif

inline void DecodeRowsBf16(const WeightMatrix& w, int64_t begin, int64_t end, uint16_t* HWY_RESTRICT out) {
  if (w.format != WeightFormat::kE4M3Blocked && w.format != WeightFormat::kE2M1Grouped) {
    DecodeRowsBf16Reference(w, begin, end, out);
    return;
  }
  // Per row one division for its scales, none per block (a 64-bit division
  // per 32 columns had cost as much as their decode).
  const int64_t cols = w.cols, scale_cols = w.ScaleCols();
  const bool e4m3 = w.format == WeightFormat::kE4M3Blocked;
  for (int64_t r = begin; r < end; ++r, out += cols) {
    const uint8_t* scales = w.scales + (e4m3 ? (r + w.scale_row_offset) / w.block_rows : r) * scale_cols;
    for (int64_t b = 0, c0 = 0; c0 < cols; ++b, c0 += w.block_cols) {
      const int64_t c1 = std::min(cols, c0 + w.block_cols);
      const int64_t done = e4m3 ? Bf16E4M3Columns(w.data + r * cols, scales[b], c0, c1, out)
                                : Bf16E2M1Columns(w.data + r * (cols / 2), scales[b], c0, c1, out);
      if (done < c1) DecodeColumnsBf16Reference(w, r, done, c1, out + done);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace dsv4
HWY_AFTER_NAMESPACE();

#endif  // DSV4_SIMD_BF16_WEIGHTS_INL_H_TARGET
