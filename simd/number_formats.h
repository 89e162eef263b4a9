// Scalar encoders and decoders of the number formats in DeepSeek-V4
// checkpoints and in its activation round trips (spec §3). These are the
// reference semantics; SIMD kernels are tested against them.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace dsv4 {

inline float BitsToF32(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
inline uint32_t F32ToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline float Bf16ToF32(uint16_t v) { return BitsToF32(uint32_t{v} << 16); }
// Round to nearest even; NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t bits = F32ToBits(f);
  if ((bits & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

// float8_e4m3fn: bias 7, no infinities, 0x7F/0xFF are NaN, max 448.
float E4M3ToF32(uint8_t code);
// Clamp to [-448, 448], then round to nearest even on the E4M3 grid.
uint8_t F32ToE4M3(float x);

// E2M1 (FP4): code & 7 indexes {0, .5, 1, 1.5, 2, 3, 4, 6}; code & 8 is the sign.
inline float E2M1ToF32(uint8_t code) {
  static constexpr float kValues[16] = {0.f,  0.5f,  1.f,  1.5f,  2.f,  3.f,  4.f,  6.f,
                                        -0.f, -0.5f, -1.f, -1.5f, -2.f, -3.f, -4.f, -6.f};
  return kValues[code & 15];
}
// Clamp to [-6, 6], then round to nearest with ties to the even code.
uint8_t F32ToE2M1(float x);

// UE8M0 scale: 2^(e - 127); 0 -> 2^-127; 255 -> NaN.
inline float E8M0ToF32(uint8_t e) {
  if (e == 255) return std::nanf("");
  if (e == 0) return BitsToF32(0x00400000);
  return BitsToF32(uint32_t{e} << 23);
}

// The power-of-two scale of spec §3.2: 2^ceil(log2(fp32(amax * inv_qmax))).
float ScalePow2(float amax, float inv_qmax);

inline constexpr float kInvE4M3Max = 1.0f / 448.0f;  // bits 0x3B124925
inline constexpr float kInvE2M1Max = 1.0f / 6.0f;    // bits 0x3E2AAAAB

// FP8 quantization of x[0, n) in blocks of `block` (§3.4): one E4M3 code per
// element and one E8M0 power-of-two scale per block. Decoding gives back
// exactly the round-tripped values, which is what makes the compact KV
// layout lossless.
void Fp8Encode(const float* x, size_t n, size_t block, uint8_t* codes, uint8_t* scales);
void Fp8Decode(const uint8_t* codes, const uint8_t* scales, size_t n, size_t block, float* x);
// FP4 quantization (§3.5): two E2M1 codes per byte (element 2j in the low
// nibble), one E8M0 scale per block. n and block are even.
void Fp4Encode(const float* x, size_t n, size_t block, uint8_t* packed, uint8_t* scales);
void Fp4Decode(const uint8_t* packed, const uint8_t* scales, size_t n, size_t block, float* x);
// In-place quantize-dequantize: Decode(Encode(x)).
void Fp8RoundTrip(float* x, size_t n, size_t block);
void Fp4RoundTrip(float* x, size_t n, size_t block);
// Walsh-Hadamard transform of x[0, n) (n a power of two) scaled by n^-0.5 (§3.6).
void HadamardTransform(float* x, size_t n);

}  // namespace dsv4
