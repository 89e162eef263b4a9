#include "simd/weight_matrix.h"

#include "simd/number_formats.h"

namespace dsv4 {

int64_t WeightMatrix::Bytes() const {
  switch (format) {
    case WeightFormat::kF32:
      return rows * cols * 4;
    case WeightFormat::kBF16:
      return rows * cols * 2;
    case WeightFormat::kE4M3Blocked:
      return rows * cols + ((rows + block_rows - 1) / block_rows) * ScaleCols();
    case WeightFormat::kE2M1Grouped:
      return rows * cols / 2 + rows * ScaleCols();
  }
  return 0;
}

void DecodeRow(const WeightMatrix& w, int64_t r, float* out) {
  switch (w.format) {
    case WeightFormat::kF32: {
      const float* row = reinterpret_cast<const float*>(w.data) + r * w.cols;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = row[c];
      return;
    }
    case WeightFormat::kBF16: {
      const uint16_t* row = reinterpret_cast<const uint16_t*>(w.data) + r * w.cols;
      for (int64_t c = 0; c < w.cols; ++c) out[c] = Bf16ToF32(row[c]);
      return;
    }
    case WeightFormat::kE4M3Blocked: {
      const uint8_t* row = w.data + r * w.cols;
      const uint8_t* scales = w.scales + (r / w.block_rows) * w.ScaleCols();
      for (int64_t c = 0; c < w.cols; ++c) out[c] = E4M3ToF32(row[c]) * E8M0ToF32(scales[c / w.block_cols]);
      return;
    }
    case WeightFormat::kE2M1Grouped: {
      const uint8_t* row = w.data + r * (w.cols / 2);
      const uint8_t* scales = w.scales + r * w.ScaleCols();
      for (int64_t c = 0; c < w.cols; ++c) {
        const uint8_t byte = row[c / 2];
        const uint8_t code = (c & 1) ? (byte >> 4) : (byte & 15);
        out[c] = E2M1ToF32(code) * E8M0ToF32(scales[c / w.block_cols]);
      }
      return;
    }
  }
}

}  // namespace dsv4
