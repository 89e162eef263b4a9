#include "simd/weight_matrix.h"

#include <cstring>

#include "simd/number_formats.h"

namespace dsv4 {

int64_t WeightMatrix::Bytes() const {
  switch (format) {
    case WeightFormat::kF32:
      return rows * cols * 4;
    case WeightFormat::kBF16:
      return rows * cols * 2;
    case WeightFormat::kE4M3Blocked:
      return rows * cols + ScaleRows() * ScaleCols();
    case WeightFormat::kE2M1Grouped:
      return rows * cols / 2 + rows * ScaleCols();
  }
  return 0;
}

WeightMatrix SliceRows(const WeightMatrix& w, int64_t first, int64_t count) {
  WeightMatrix slice = w;
  slice.rows = count;
  switch (w.format) {
    case WeightFormat::kF32:
      slice.data = w.data + first * w.cols * 4;
      break;
    case WeightFormat::kBF16:
      slice.data = w.data + first * w.cols * 2;
      break;
    case WeightFormat::kE4M3Blocked: {
      const int64_t row = first + w.scale_row_offset;
      slice.data = w.data + first * w.cols;
      slice.scales = w.scales + (row / w.block_rows) * w.ScaleCols();
      slice.scale_row_offset = row % w.block_rows;
      break;
    }
    case WeightFormat::kE2M1Grouped:
      slice.data = w.data + first * (w.cols / 2);
      slice.scales = w.scales + first * w.ScaleCols();
      break;
  }
  return slice;
}

void DecodeRow(const WeightMatrix& w, int64_t r, float* out) {
  switch (w.format) {
    // Safetensors data offsets need not be aligned to the element size, so
    // wide elements are read with memcpy.
    case WeightFormat::kF32:
      std::memcpy(out, w.data + r * w.cols * 4, w.cols * 4);
      return;
    case WeightFormat::kBF16: {
      const uint8_t* row = w.data + r * w.cols * 2;
      for (int64_t c = 0; c < w.cols; ++c) {
        uint16_t bits;
        std::memcpy(&bits, row + 2 * c, 2);
        out[c] = Bf16ToF32(bits);
      }
      return;
    }
    case WeightFormat::kE4M3Blocked: {
      const uint8_t* row = w.data + r * w.cols;
      const uint8_t* scales = w.scales + ((r + w.scale_row_offset) / w.block_rows) * w.ScaleCols();
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
