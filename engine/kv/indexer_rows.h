// The indexer rows of one CSA layer, kept contiguous in RAM in the layout of
// a weight matrix, so that scoring every row against all query heads is one
// MatMul: E2M1 codes [rows][dim/2] + E8M0 scales [rows][dim/32] in default
// numerics (exactly the FP4 round trip), f32 [rows][dim] otherwise. They are
// scanned at every step, so they never spill.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv/kv_codec.h"
#include "simd/weight_matrix.h"

namespace dsv4 {

class IndexerRows {
 public:
  explicit IndexerRows(KvCodec codec);

  const KvCodec& codec() const { return codec_; }
  int64_t size() const { return rows_; }
  int64_t resident_bytes() const { return static_cast<int64_t>(data_.capacity() + scales_.capacity()); }

  void Append(const float* row);
  // Keeps the first `rows` rows (at most size()): speculative rows rolled back.
  void Truncate(int64_t rows);
  // The first `rows` rows as a matrix [rows][dim].
  WeightMatrix View(int64_t rows) const;

  // Rows in the codec's per-row encoding, for sessions.
  void ReadEncoded(int64_t begin, int64_t count, uint8_t* out) const;
  void AppendEncoded(const uint8_t* rows, int64_t count);

 private:
  KvCodec codec_;
  int64_t rows_ = 0;
  std::vector<uint8_t> data_;    // codes or f32 bytes
  std::vector<uint8_t> scales_;  // compact layout only
};

}  // namespace dsv4
