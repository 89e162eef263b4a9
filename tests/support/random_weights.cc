#include "tests/support/random_weights.h"

#include <cstring>
#include <random>

#include "simd/number_formats.h"

namespace dsv4::testing {
namespace {

uint8_t RandomE4M3(std::mt19937& rng, bool small) {
  // Edge codes first: zero, -0, smallest subnormal, largest subnormal, smallest normal, +-448.
  static constexpr uint8_t kEdges[] = {0x00, 0x80, 0x01, 0x81, 0x07, 0x08, 0x7E, 0xFE};
  for (;;) {
    const uint32_t pick = rng();
    uint8_t code = pick % 8 == 0 ? kEdges[(pick >> 3) % 8] : static_cast<uint8_t>(pick >> 8);
    if ((code & 0x7F) == 0x7F) continue;               // NaN codes never occur in checkpoints
    if (small && (code & 0x78) > 0x38) continue;       // |value| < 2
    return code;
  }
}

uint8_t RandomE2M1Pair(std::mt19937& rng, bool small) {
  uint8_t lo = rng() & 15, hi = rng() & 15;
  if (small) lo &= 0xB, hi &= 0xB;  // magnitudes 0 .. 1.5
  return static_cast<uint8_t>(lo | hi << 4);
}

}  // namespace

OwnedMatrix MakeMatrix(WeightFormat format, int64_t rows, int64_t cols, int64_t block_rows, int64_t block_cols,
                       const Draw& draw, uint32_t seed) {
  std::mt19937 rng(seed);
  OwnedMatrix m;
  m.w.format = format;
  m.w.rows = rows;
  m.w.cols = cols;
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  switch (format) {
    case WeightFormat::kF32: {
      m.data.resize(rows * cols * 4);
      for (int64_t i = 0; i < rows * cols; ++i) {
        const float v = rng() % 16 == 0 ? 0.0f : uniform(rng);
        std::memcpy(m.data.data() + 4 * i, &v, 4);
      }
      break;
    }
    case WeightFormat::kBF16: {
      m.data.resize(rows * cols * 2);
      for (int64_t i = 0; i < rows * cols; ++i) {
        const uint16_t v = F32ToBf16(uniform(rng) * 8.0f);
        std::memcpy(m.data.data() + 2 * i, &v, 2);
      }
      break;
    }
    case WeightFormat::kE4M3Blocked: {
      m.w.block_rows = block_rows;
      m.w.block_cols = block_cols;
      m.data.resize(rows * cols);
      for (auto& code : m.data) code = RandomE4M3(rng, draw.small_codes);
      m.scales.resize((rows + block_rows - 1) / block_rows * m.w.ScaleCols());
      break;
    }
    case WeightFormat::kE2M1Grouped: {
      m.w.block_rows = 1;
      m.w.block_cols = block_cols;
      m.data.resize(rows * cols / 2);
      for (auto& pair : m.data) pair = RandomE2M1Pair(rng, draw.small_codes);
      m.scales.resize(rows * m.w.ScaleCols());
      break;
    }
  }
  for (auto& e : m.scales) e = static_cast<uint8_t>(draw.scale_lo + rng() % (draw.scale_hi - draw.scale_lo + 1));
  m.w.data = m.data.data();
  m.w.scales = m.scales.empty() ? nullptr : m.scales.data();
  return m;
}

std::vector<float> RandomVector(int64_t n, float magnitude, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uniform(-magnitude, magnitude);
  std::vector<float> v(n);
  for (float& x : v) x = uniform(rng);
  return v;
}

}  // namespace dsv4::testing
