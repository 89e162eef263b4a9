// How one cached KV row is stored (spec §5.2). In default numerics the rows
// are exactly representable in a compact form, so storing them compactly is
// lossless: main compressed rows as E4M3 codes + one power-of-two scale per
// 64 non-RoPE dims plus the RoPE dims in f32, indexer rows as packed E2M1
// codes + one scale per 32. Encoding performs the model's round trip itself.
#pragma once

#include <cstdint>

namespace dsv4 {

inline constexpr int64_t kFp8Block = 64;  // the reference kernel's KV block (§3.4)
inline constexpr int64_t kFp4Block = 32;  // indexer queries and rows (§3.5)

class KvCodec {
 public:
  // The round trip the model applies to the rows (none in smooth numerics).
  enum class Quantization {
    kNone,
    kFp8Nope,   // E4M3 on the non-RoPE dims (main compressed rows)
    kFp4,       // E2M1 on every dim (indexer rows, after the Hadamard rotation)
  };

  // compact: store codes and scales; otherwise f32 rows (after the round
  // trip), the plain layout that the compact one must match bit for bit.
  KvCodec(Quantization quantization, bool compact, int64_t dim, int64_t rope_dims);

  Quantization quantization() const { return quantization_; }
  bool compact() const { return compact_; }
  int64_t dim() const { return dim_; }
  int64_t bytes_per_row() const { return bytes_per_row_; }
  // Encodes row[dim] (rounding it as the model's round trip does).
  void Encode(const float* row, uint8_t* out) const;
  // Decodes exactly what the round trip of the encoded row gives.
  void Decode(const uint8_t* in, float* row) const;

 private:
  Quantization quantization_;
  bool compact_;
  int64_t dim_;
  int64_t nope_;  // dims before the RoPE dims
  int64_t bytes_per_row_;
};

}  // namespace dsv4
