#include "engine/kv/kv_codec.h"

#include <cstring>

#include "simd/number_formats.h"

namespace dsv4 {
KvCodec::KvCodec(Quantization quantization, bool compact, int64_t dim, int64_t rope_dims)
    : quantization_(quantization), compact_(compact && quantization != Quantization::kNone), dim_(dim),
      nope_(dim - rope_dims) {
  if (!compact_) {
    bytes_per_row_ = dim * 4;
  } else if (quantization == Quantization::kFp8Nope) {
    bytes_per_row_ = nope_ + nope_ / kFp8Block + rope_dims * 4;
  } else {
    bytes_per_row_ = dim / 2 + dim / kFp4Block;
  }
}

void KvCodec::Encode(const float* row, uint8_t* out) const {
  if (!compact_) {
    float* plain = reinterpret_cast<float*>(out);
    std::memcpy(plain, row, dim_ * 4);
    if (quantization_ == Quantization::kFp8Nope) Fp8RoundTrip(plain, nope_, kFp8Block);
    if (quantization_ == Quantization::kFp4) Fp4RoundTrip(plain, dim_, kFp4Block);
  } else if (quantization_ == Quantization::kFp8Nope) {
    Fp8Encode(row, nope_, kFp8Block, out, out + nope_);
    std::memcpy(out + nope_ + nope_ / kFp8Block, row + nope_, (dim_ - nope_) * 4);
  } else {
    Fp4Encode(row, dim_, kFp4Block, out, out + dim_ / 2);
  }
}

void KvCodec::Decode(const uint8_t* in, float* row) const {
  if (!compact_) {
    std::memcpy(row, in, dim_ * 4);
  } else if (quantization_ == Quantization::kFp8Nope) {
    Fp8Decode(in, in + nope_, nope_, kFp8Block, row);
    std::memcpy(row + nope_, in + nope_ + nope_ / kFp8Block, (dim_ - nope_) * 4);
  } else {
    Fp4Decode(in, in + dim_ / 2, dim_, kFp4Block, row);
  }
}

}  // namespace dsv4
