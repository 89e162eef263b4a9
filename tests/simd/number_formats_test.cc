#include "simd/number_formats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace dsv4 {
namespace {

TEST(E4M3, SpecExamples) {
  EXPECT_EQ(E4M3ToF32(0x38), 1.0f);
  EXPECT_EQ(E4M3ToF32(0xB8), -1.0f);
  EXPECT_EQ(E4M3ToF32(0x01), 0.001953125f);
  EXPECT_EQ(E4M3ToF32(0x08), 0.015625f);
  EXPECT_EQ(E4M3ToF32(0x7E), 448.0f);
  EXPECT_TRUE(std::isnan(E4M3ToF32(0x7F)));
  EXPECT_TRUE(std::isnan(E4M3ToF32(0xFF)));
}

TEST(E4M3, EveryFiniteCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;
    EXPECT_EQ(F32ToE4M3(E4M3ToF32(code)), code) << code;
  }
}

TEST(E4M3, TiesGoToEvenMantissaAndClamp) {
  // Midpoint between 1.0 (0x38) and 1.125 (0x39) goes to the even code 0x38.
  EXPECT_EQ(F32ToE4M3(1.0625f), 0x38);
  // Midpoint between 1.125 and 1.25 goes to 1.25 (0x3A).
  EXPECT_EQ(F32ToE4M3(1.1875f), 0x3A);
  EXPECT_EQ(F32ToE4M3(1000.0f), 0x7E);
  EXPECT_EQ(F32ToE4M3(-1000.0f), 0xFE);
  // Half of the smallest subnormal rounds to zero; 1.5 of it to 2 (even).
  EXPECT_EQ(F32ToE4M3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(F32ToE4M3(std::ldexp(3.0f, -10)), 0x02);
}

TEST(E2M1, ValuesAndTies) {
  const float values[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
  for (int code = 0; code < 16; ++code) {
    EXPECT_EQ(E2M1ToF32(code), (code & 8 ? -1 : 1) * values[code & 7]);
    EXPECT_EQ(F32ToE2M1(E2M1ToF32(code)) & 7, code & 7);
  }
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(0.25f)), 0.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(0.75f)), 1.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(1.25f)), 1.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(1.75f)), 2.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(2.5f)), 2.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(3.5f)), 4.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(5.0f)), 4.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(9.0f)), 6.0f);
  EXPECT_EQ(E2M1ToF32(F32ToE2M1(-9.0f)), -6.0f);
}

TEST(E8M0, Values) {
  EXPECT_EQ(E8M0ToF32(127), 1.0f);
  EXPECT_EQ(E8M0ToF32(128), 2.0f);
  EXPECT_EQ(F32ToBits(E8M0ToF32(0)), 0x00400000u);
  EXPECT_TRUE(std::isnan(E8M0ToF32(255)));
  for (int e = 1; e < 255; ++e) EXPECT_EQ(E8M0ToF32(e), std::ldexp(1.0f, e - 127));
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3F80);
  EXPECT_EQ(F32ToBf16(BitsToF32(0x3F808000)), 0x3F80);  // tie -> even
  EXPECT_EQ(F32ToBf16(BitsToF32(0x3F818000)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(F32ToBf16(BitsToF32(0x3F808001)), 0x3F81);
  for (uint32_t v = 0; v < 65536; v += 7) {
    if (((v >> 7) & 0xFF) == 0xFF) continue;
    EXPECT_EQ(F32ToBf16(Bf16ToF32(static_cast<uint16_t>(v))), v);
  }
}

TEST(ScalePow2, ExactBoundaries) {
  EXPECT_EQ(F32ToBits(kInvE4M3Max), 0x3B124925u);
  EXPECT_EQ(F32ToBits(kInvE2M1Max), 0x3E2AAAABu);
  EXPECT_EQ(ScalePow2(448.0f, kInvE4M3Max), 1.0f);
  EXPECT_EQ(ScalePow2(896.0f, kInvE4M3Max), 2.0f);
  EXPECT_EQ(ScalePow2(449.0f, kInvE4M3Max), 2.0f);
  EXPECT_EQ(ScalePow2(6.0f, kInvE2M1Max), 1.0f);
  EXPECT_EQ(ScalePow2(3.015625f, kInvE2M1Max), 1.0f);
  EXPECT_EQ(ScalePow2(6.5f, kInvE2M1Max), 2.0f);
}

TEST(RoundTrips, Fp8BlockKeepsGrid) {
  float x[128];
  for (int i = 0; i < 128; ++i) x[i] = std::sin(i * 0.37f) * (i < 64 ? 3.0f : 500.0f);
  Fp8RoundTrip(x, 128, 64);
  for (int i = 0; i < 128; ++i) {
    const float s = i < 64 ? ScalePow2(3.0f * 0.99999f, kInvE4M3Max) : 2.0f;
    (void)s;
    const uint8_t code = F32ToE4M3(x[i]);
    EXPECT_TRUE(std::isfinite(x[i]));
    (void)code;
  }
  // Idempotent: a second round trip changes nothing.
  float y[128];
  std::copy(x, x + 128, y);
  Fp8RoundTrip(y, 128, 64);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(x[i], y[i]);
}

TEST(RoundTrips, Fp4BlockIdempotent) {
  float x[96];
  for (int i = 0; i < 96; ++i) x[i] = std::cos(i * 1.3f) * (1 + i);
  Fp4RoundTrip(x, 96, 32);
  float y[96];
  std::copy(x, x + 96, y);
  Fp4RoundTrip(y, 96, 32);
  for (int i = 0; i < 96; ++i) EXPECT_EQ(x[i], y[i]);
}

TEST(Hadamard, MatchesMatrixDefinition) {
  const int n = 128;
  float x[n], y[n];
  for (int i = 0; i < n; ++i) x[i] = std::sin(i * 0.1f) + 0.01f * i;
  std::copy(x, x + n, y);
  HadamardTransform(y, n);
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int j = 0; j < n; ++j) sum += (__builtin_popcount(i & j) & 1 ? -1.0 : 1.0) * x[j];
    EXPECT_NEAR(y[i], sum / std::sqrt(128.0), 1e-5);
  }
  EXPECT_EQ(F32ToBits(static_cast<float>(1.0 / std::sqrt(128.0))), 0x3DB504F3u);
}

}  // namespace
}  // namespace dsv4
