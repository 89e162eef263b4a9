#include "simd/bf16_weights.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/bf16_weights.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "simd/bf16_weights-inl.h"

#if HWY_ONCE
#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

#include "simd/number_formats.h"

namespace dsv4 {
namespace {

// The top half of an exact f32 is its bf16 when the low half is zero, which
// holds for the values decoded here.
uint16_t TopHalf(float f) { return static_cast<uint16_t>(F32ToBits(f) >> 16); }

template <int kCodes, float (*kDecode)(uint8_t)>
std::array<uint16_t, kCodes> Bf16Table() {
  std::array<uint16_t, kCodes> table{};
  for (int code = 0; code < kCodes; ++code) table[code] = TopHalf(kDecode(static_cast<uint8_t>(code)));
  return table;
}

float E2M1Code(uint8_t code) { return E2M1ToF32(code); }

// Multiplying a nonzero bf16 by 2^k adds k to its exponent field, exact
// while the result stays a normal number: with unscaled magnitudes whose
// exponent fields lie in [lowest, highest], k must keep both inside [1, 254].
// Blocks whose scale falls outside (never in a checkpoint) take the f32 path.
bool ExponentAddIsExact(uint8_t scale, int lowest, int highest) {
  const int k = int{scale} - 127;
  return scale != 0 && scale != 255 && lowest + k >= 1 && highest + k <= 254;
}

// out[i] = table[code_at(c)] * 2^(scale - 127) for c in [c_begin, c_end).
template <typename CodeAt>
void ScaleColumns(const uint16_t* table, uint8_t scale, int lowest, int highest, float (*decode)(uint8_t),
                  int64_t c_begin, int64_t c_end, CodeAt code_at, uint16_t* out) {
  if (ExponentAddIsExact(scale, lowest, highest)) {
    const uint16_t add = static_cast<uint16_t>((int{scale} - 127) * 128);
    for (int64_t c = c_begin; c < c_end; ++c) {
      const uint16_t v = table[code_at(c)];
      *out++ = static_cast<uint16_t>(v + ((v & 0x7FFF) ? add : 0));
    }
  } else {
    const float s = E8M0ToF32(scale);
    for (int64_t c = c_begin; c < c_end; ++c) *out++ = TopHalf(decode(code_at(c)) * s);
  }
}

// Exponent fields of the smallest and largest nonzero magnitudes: E4M3
// 2^-9 .. 448, E2M1 0.5 .. 6. (The NaN codes 0x7F/0xFF, never in a
// checkpoint, come out finite here and in the kernels.)
constexpr int kE4M3Lowest = 127 - 9, kE4M3Highest = 127 + 8;
constexpr int kE2M1Lowest = 127 - 1, kE2M1Highest = 127 + 2;

}  // namespace

HWY_EXPORT(DecodeRowsBf16);

bool ExactInBf16(WeightFormat format) {
  return format == WeightFormat::kBF16 || format == WeightFormat::kE4M3Blocked ||
         format == WeightFormat::kE2M1Grouped;
}

void DecodeRowsBf16(const WeightMatrix& w, int64_t begin, int64_t end, uint16_t* out) {
  if (!ExactInBf16(w.format)) throw std::invalid_argument("DecodeRowsBf16: F32 weights are not exact in bf16");
  HWY_DYNAMIC_DISPATCH(DecodeRowsBf16)(w, begin, end, out);
}

void DecodeColumnsBf16Reference(const WeightMatrix& w, int64_t r, int64_t c_begin, int64_t c_end, uint16_t* out) {
  static const std::array<uint16_t, 256> e4m3 = Bf16Table<256, E4M3ToF32>();
  static const std::array<uint16_t, 16> e2m1 = Bf16Table<16, E2M1Code>();
  const int64_t cols = w.cols;
  switch (w.format) {
    case WeightFormat::kBF16:
      std::memcpy(out, w.data + (r * cols + c_begin) * 2, (c_end - c_begin) * 2);
      return;
    case WeightFormat::kE4M3Blocked: {
      const uint8_t* row = w.data + r * cols;
      const uint8_t* scales = w.scales + ((r + w.scale_row_offset) / w.block_rows) * w.ScaleCols();
      for (int64_t c = c_begin; c < c_end;) {
        const int64_t stop = std::min(c_end, (c / w.block_cols + 1) * w.block_cols);
        ScaleColumns(e4m3.data(), scales[c / w.block_cols], kE4M3Lowest, kE4M3Highest, E4M3ToF32, c, stop,
                     [&](int64_t i) { return row[i]; }, out + (c - c_begin));
        c = stop;
      }
      return;
    }
    case WeightFormat::kE2M1Grouped: {
      const uint8_t* row = w.data + r * (cols / 2);
      const uint8_t* scales = w.scales + r * w.ScaleCols();
      for (int64_t c = c_begin; c < c_end;) {
        const int64_t stop = std::min(c_end, (c / w.block_cols + 1) * w.block_cols);
        ScaleColumns(e2m1.data(), scales[c / w.block_cols], kE2M1Lowest, kE2M1Highest, E2M1Code, c, stop,
                     [&](int64_t i) {
                       const uint8_t byte = row[i / 2];
                       return static_cast<uint8_t>((i & 1) ? byte >> 4 : byte & 15);
                     },
                     out + (c - c_begin));
        c = stop;
      }
      return;
    }
    case WeightFormat::kF32:
      break;
  }
  throw std::invalid_argument("DecodeRowsBf16: F32 weights are not exact in bf16");
}

void DecodeRowsBf16Reference(const WeightMatrix& w, int64_t begin, int64_t end, uint16_t* out) {
  for (int64_t r = begin; r < end; ++r) DecodeColumnsBf16Reference(w, r, 0, w.cols, out + (r - begin) * w.cols);
}

void RoundToBf16(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = F32ToBf16(x[i]);
}

}  // namespace dsv4
#endif  // HWY_ONCE
