#include "engine/kv/indexer_rows.h"

#include <cstring>
#include <string>

#include "loader/error.h"

namespace dsv4 {

IndexerRows::IndexerRows(KvCodec codec) : codec_(codec) {}

// A compact row is its codes followed by its scales (KvCodec); here the two
// parts go to separate arrays.
void IndexerRows::AppendEncoded(const uint8_t* rows, int64_t count) {
  const int64_t row_bytes = codec_.bytes_per_row();
  const int64_t code_bytes = codec_.compact() ? codec_.dim() / 2 : row_bytes;
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* row = rows + i * row_bytes;
    data_.insert(data_.end(), row, row + code_bytes);
    scales_.insert(scales_.end(), row + code_bytes, row + row_bytes);
  }
  rows_ += count;
}

void IndexerRows::Append(const float* row) {
  std::vector<uint8_t> encoded(codec_.bytes_per_row());
  codec_.Encode(row, encoded.data());
  AppendEncoded(encoded.data(), 1);
}

void IndexerRows::Truncate(int64_t rows) {
  if (rows < 0 || rows > rows_) {
    throw Error("cannot keep " + std::to_string(rows) + " of " + std::to_string(rows_) + " indexer rows");
  }
  const int64_t row_bytes = codec_.bytes_per_row();
  const int64_t code_bytes = codec_.compact() ? codec_.dim() / 2 : row_bytes;
  data_.resize(rows * code_bytes);
  scales_.resize(rows * (row_bytes - code_bytes));
  rows_ = rows;
}

void IndexerRows::ReadEncoded(int64_t begin, int64_t count, uint8_t* out) const {
  const int64_t row_bytes = codec_.bytes_per_row();
  const int64_t code_bytes = codec_.compact() ? codec_.dim() / 2 : row_bytes;
  const int64_t scale_bytes = row_bytes - code_bytes;
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(out + i * row_bytes, data_.data() + (begin + i) * code_bytes, code_bytes);
    // Plain f32 rows (smooth numerics) have no scales, and memcpy from the
    // empty vector's null data() is undefined even for 0 bytes.
    if (scale_bytes > 0) {
      std::memcpy(out + i * row_bytes + code_bytes, scales_.data() + (begin + i) * scale_bytes, scale_bytes);
    }
  }
}

WeightMatrix IndexerRows::View(int64_t rows) const {
  WeightMatrix m;
  m.rows = rows;
  m.cols = codec_.dim();
  m.data = data_.data();
  if (codec_.compact()) {
    m.format = WeightFormat::kE2M1Grouped;
    m.scales = scales_.data();
    m.block_cols = 32;
  } else {
    m.format = WeightFormat::kF32;
  }
  return m;
}

}  // namespace dsv4
