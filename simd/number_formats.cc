#include "simd/number_formats.h"

#include <algorithm>
#include <vector>

namespace dsv4 {

namespace {

float DecodeE4M3(uint8_t code) {
  const int sign = code >> 7, exponent = (code >> 3) & 15, mantissa = code & 7;
  float magnitude;
  if (exponent == 15 && mantissa == 7) return std::nanf("");
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  } else {
    magnitude = std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
  }
  return sign ? -magnitude : magnitude;
}

// The 256 decoded codes, made once: a lookup is what the KV rows' decode
// (every attended row, every query) can afford per element.
const float* E4M3Table() {
  static const auto* const kTable = [] {
    auto* table = new float[256];
    for (int c = 0; c < 256; ++c) table[c] = DecodeE4M3(static_cast<uint8_t>(c));
    return table;
  }();
  return kTable;
}

}  // namespace

float E4M3ToF32(uint8_t code) { return E4M3Table()[code]; }

uint8_t F32ToE4M3(float x) {
  if (std::isnan(x)) return 0x7F;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0;
  const float a = std::min(std::fabs(x), 448.0f);
  if (a < 0.015625f) {  // below the smallest normal 2^-6: multiples of 2^-9
    const int m = static_cast<int>(std::nearbyint(std::ldexp(a, 9)));
    return sign | static_cast<uint8_t>(m);  // m == 8 is exactly the code of 2^-6
  }
  int e;
  std::frexp(a, &e);  // a = f * 2^e with f in [0.5, 1)
  const int unbiased = e - 1;
  int q = static_cast<int>(std::nearbyint(std::ldexp(a, 3 - unbiased)));  // in [8, 16]
  int biased = unbiased + 7;
  if (q == 16) {
    q = 8;
    ++biased;
  }
  return sign | static_cast<uint8_t>((biased << 3) | (q - 8));
}

uint8_t F32ToE2M1(float x) {
  const uint8_t sign = std::signbit(x) ? 8 : 0;
  const float a = std::isnan(x) ? 0.0f : std::min(std::fabs(x), 6.0f);
  uint8_t code;
  if (a < 2.0f) {
    code = static_cast<uint8_t>(std::nearbyint(a * 2.0f));  // 0, .5, 1, 1.5, (2.0 = code 4)
  } else if (a < 4.0f) {
    code = static_cast<uint8_t>(std::nearbyint(a) + 2.0f);  // 2 -> 4, 3 -> 5, 4 -> 6
  } else {
    code = static_cast<uint8_t>(std::nearbyint(a * 0.5f) + 4.0f);  // 4 -> 6, 6 -> 7
  }
  return sign | code;
}

float ScalePow2(float amax, float inv_qmax) {
  const float t = amax * inv_qmax;
  const uint32_t bits = F32ToBits(t);
  const int e = static_cast<int>((bits >> 23) & 0xFF) - 127 + ((bits & 0x7FFFFF) != 0 ? 1 : 0);
  return std::ldexp(1.0f, e);
}

namespace {

// The E8M0 byte of a power-of-two scale from ScalePow2 (always a normal float).
uint8_t ScaleByte(float scale) { return static_cast<uint8_t>((F32ToBits(scale) >> 23) & 0xFF); }

float BlockAmax(const float* x, size_t begin, size_t end, float floor) {
  float amax = floor;
  for (size_t i = begin; i < end; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

}  // namespace

void Fp8Encode(const float* x, size_t n, size_t block, uint8_t* codes, uint8_t* scales) {
  for (size_t b = 0; b < n; b += block) {
    const size_t end = std::min(n, b + block);
    const float s = ScalePow2(BlockAmax(x, b, end, 1e-4f), kInvE4M3Max);
    scales[b / block] = ScaleByte(s);
    for (size_t i = b; i < end; ++i) codes[i] = F32ToE4M3(x[i] / s);
  }
}

// The decoders take each block's scale once and look codes up in place (the
// same products as E4M3ToF32 / E2M1ToF32 times E8M0ToF32, per element).
void Fp8Decode(const uint8_t* codes, const uint8_t* scales, size_t n, size_t block, float* x) {
  const float* table = E4M3Table();
  for (size_t b = 0; b < n; b += block) {
    const float scale = E8M0ToF32(scales[b / block]);
    const size_t end = std::min(n, b + block);
    for (size_t i = b; i < end; ++i) x[i] = table[codes[i]] * scale;
  }
}

void Fp4Encode(const float* x, size_t n, size_t block, uint8_t* packed, uint8_t* scales) {
  const float floor_amax = 6.0f * std::ldexp(1.0f, -126);
  for (size_t b = 0; b < n; b += block) {
    const size_t end = std::min(n, b + block);
    const float s = ScalePow2(BlockAmax(x, b, end, floor_amax), kInvE2M1Max);
    scales[b / block] = ScaleByte(s);
    for (size_t i = b; i < end; i += 2) {
      packed[i / 2] = static_cast<uint8_t>(F32ToE2M1(x[i] / s) | (F32ToE2M1(x[i + 1] / s) << 4));
    }
  }
}

void Fp4Decode(const uint8_t* packed, const uint8_t* scales, size_t n, size_t block, float* x) {
  for (size_t b = 0; b < n; b += block) {
    const float scale = E8M0ToF32(scales[b / block]);
    const size_t end = std::min(n, b + block);
    for (size_t i = b; i < end; i += 2) {
      const uint8_t byte = packed[i / 2];
      x[i] = E2M1ToF32(byte & 15) * scale;
      x[i + 1] = E2M1ToF32(byte >> 4) * scale;
    }
  }
}

void Fp8RoundTrip(float* x, size_t n, size_t block) {
  std::vector<uint8_t> codes(n), scales((n + block - 1) / block);
  Fp8Encode(x, n, block, codes.data(), scales.data());
  Fp8Decode(codes.data(), scales.data(), n, block, x);
}

void Fp4RoundTrip(float* x, size_t n, size_t block) {
  std::vector<uint8_t> packed((n + 1) / 2), scales((n + block - 1) / block);
  Fp4Encode(x, n, block, packed.data(), scales.data());
  Fp4Decode(packed.data(), scales.data(), n, block, x);
}

void HadamardTransform(float* x, size_t n) {
  // Butterflies in double, one rounding at the end: the result feeds the
  // FP4 round trip, whose decisions f32 rounding noise would flip.
  std::vector<double> v(x, x + n);
  for (size_t stride = 1; stride < n; stride *= 2) {
    for (size_t base = 0; base < n; base += 2 * stride) {
      for (size_t i = base; i < base + stride; ++i) {
        const double a = v[i], b = v[i + stride];
        v[i] = a + b;
        v[i + stride] = a - b;
      }
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(n));
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(v[i] * scale);
}

}  // namespace dsv4
