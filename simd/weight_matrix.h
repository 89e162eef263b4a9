// A weight matrix as the checkpoint stores it: never widened in memory.
// Kernels decode it on the fly (design.md, "Weights stay in their official
// FP4/FP8 encoding in memory").
#pragma once

#include <cstdint>

namespace dsv4 {

enum class WeightFormat {
  kF32,
  kBF16,
  // F8_E4M3 codes [rows][cols] with one E8M0 scale per block_rows x block_cols
  // tile, scales [ceil(rows/block_rows)][ceil(cols/block_cols)].
  kE4M3Blocked,
  // Two E2M1 codes per byte (element 2j in the low nibble) [rows][cols/2],
  // one E8M0 scale per block_cols (32) inputs, scales [rows][cols/block_cols].
  kE2M1Grouped,
};

struct WeightMatrix {
  WeightFormat format = WeightFormat::kF32;
  int64_t rows = 0;  // outputs
  int64_t cols = 0;  // inputs (logical elements)
  const uint8_t* data = nullptr;
  const uint8_t* scales = nullptr;  // E8M0; null for F32 and BF16
  int64_t block_rows = 1;
  int64_t block_cols = 1;
  // Row r of this matrix uses the scale row (r + scale_row_offset) / block_rows
  // of `scales`: nonzero for a row slice that starts inside a scale block.
  int64_t scale_row_offset = 0;

  int64_t ScaleCols() const { return (cols + block_cols - 1) / block_cols; }
  // kE4M3Blocked: rows of `scales` that rows [0, rows) use.
  int64_t ScaleRows() const { return (rows + scale_row_offset + block_rows - 1) / block_rows; }
  // Bytes of weight data plus scales: what one full pass over it reads.
  int64_t Bytes() const;
};

// Rows [first, first + count) of w as a matrix of their own.
WeightMatrix SliceRows(const WeightMatrix& w, int64_t first, int64_t count);

// Decodes row r into out[0, cols) exactly (every format is exact in f32).
void DecodeRow(const WeightMatrix& w, int64_t r, float* out);

}  // namespace dsv4
