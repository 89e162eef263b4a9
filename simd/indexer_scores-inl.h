// Per-target body of IndexerScores (simd/indexer_scores.h), included by
// simd/indexer_scores.cc through hwy/foreach_target.h.
//
// Lanes are key rows: a tile of kRowVecs vectors of rows is decoded once into
// a [dim][tile rows] f32 buffer and then serves every (query, head). For each
// head, query values are broadcast and multiplied into one accumulator per
// row vector and block (fused multiply-add is exact inside a block), the
// block sums are scaled and added in block order, and the heads' terms in
// head order. Every lane thus runs the exact operation sequence of the scalar
// reference, whatever the vector width, the tile or the thread split.

// Shared by all targets: the decoded queries and the outputs of one call.
#ifndef DSV4_SIMD_INDEXER_SCORES_INL_H_
#define DSV4_SIMD_INDEXER_SCORES_INL_H_

#include <cstdint>

#include "simd/indexer_scores.h"

namespace dsv4 {

struct IndexerScoresJob {
  const float* query_values;  // [count * heads][dim]: E2M1 values, unscaled
  const float* query_scales;  // [count * heads][dim / 32]: E8M0 scales as f32
  const float* weights;       // [count][heads]
  int64_t count, heads;
  Fp4Rows keys;
  const int64_t* visible;
  float* scores;
  int64_t score_stride;
};

// One target's kernel: scores of key rows [begin, end) for every query that
// sees them, and the target's name.
struct IndexerScoresKernel {
  void (*rows)(const IndexerScoresJob& job, int64_t begin, int64_t end);
  const char* target;
};

}  // namespace dsv4

#endif  // DSV4_SIMD_INDEXER_SCORES_INL_H_

#if defined(DSV4_SIMD_INDEXER_SCORES_INL_H_TARGET) == defined(HWY_TARGET_TOGGLE)
#ifdef DSV4_SIMD_INDEXER_SCORES_INL_H_TARGET
#undef DSV4_SIMD_INDEXER_SCORES_INL_H_TARGET
#else
#define DSV4_SIMD_INDEXER_SCORES_INL_H_TARGET
#endif

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "hwy/aligned_allocator.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "simd/number_formats.h"

HWY_BEFORE_NAMESPACE();
namespace dsv4 {
namespace HWY_NAMESPACE {
namespace indexer {

namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using DU = hn::RebindToUnsigned<DF>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
constexpr size_t kN = hn::MaxLanes(DF());
static_assert(kN >= 8, "IndexerScores needs AVX2 or AVX-512 (compile with -march=haswell or newer)");

constexpr int64_t kBlock = 32;  // elements per E8M0 scale
// Register tile: kGroup (query, head) pairs times kRowVecs vectors of rows,
// kGroup * kRowVecs accumulators plus as many block-ordered dot products.
// AVX-512's 32 registers hold them all; AVX2 keeps the accumulators in its 16.
constexpr size_t kRowVecs = 2;
constexpr size_t kGroup = 4;
constexpr int64_t kTileRows = static_cast<int64_t>(kRowVecs * kN);

// GCC contracts a * b + c into one fused multiply-add (-ffp-contract=fast is
// its C++ default), which would skip the rounding of a product that the
// definition requires: passing the product through an empty asm makes it an
// opaque, rounded register value. x86 only, like the kernel flags.
HWY_INLINE VF Rounded(VF v) {
  asm("" : "+v"(v.raw));
  return v;
}

// Decodes key rows [first, first + kTileRows) into values [dim][kTileRows]
// and scales [dim / 32][kTileRows]. Lanes past the last valid row repeat it
// (their scores are never stored), so no load leaves the key arrays.
HWY_INLINE void DecodeKeyTile(const Fp4Rows& keys, int64_t first, int64_t valid, float* HWY_RESTRICT values,
                              float* HWY_RESTRICT scales) {
  const DF df;
  const DU du;
  const DI di;
  const hn::Half<DI> dhalf;
  const hn::Repartition<uint64_t, DF> d64;
  const hn::RebindToSigned<decltype(d64)> di64;
  // E2M1 magnitudes by code & 7, repeated to fill any vector; the sign is code bit 3.
  alignas(64) static constexpr float kMagnitudes[16] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f,
                                                        0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f};
  static_assert(kN <= 16, "one magnitude table per vector");
  const VF magnitudes = hn::Load(df, kMagnitudes);
  const auto low3 = hn::Set(du, 7u);
  const auto sign_bit = hn::Set(du, 0x80000000u);
  // Each row as 64-bit words of 16 codes: gathering 64 bits per lane halves
  // the loads of a 32-bit gather, and the words' halves split into vectors of
  // 32-bit lanes, one row each.
  const int64_t words = keys.dim / 16;
  const uint64_t* codes = reinterpret_cast<const uint64_t*>(keys.codes + first * (keys.dim / 2));
  const auto decode8 = [&](hn::Vec<DU> nibbles, float* HWY_RESTRICT out) {
    for (int64_t k = 0; k < 8; ++k) {
      const auto index = hn::IndicesFromVec(df, hn::BitCast(di, hn::And(nibbles, low3)));
      const auto magnitude = hn::TableLookupLanes(magnitudes, index);
      const auto sign = hn::BitCast(df, hn::And(hn::ShiftLeft<28>(nibbles), sign_bit));
      hn::Store(hn::Or(magnitude, sign), df, out + k * kTileRows);
      nibbles = hn::ShiftRight<4>(nibbles);
    }
  };
  for (int64_t v = 0; v < kTileRows; v += static_cast<int64_t>(kN)) {
    const auto row = hn::Min(hn::Iota(di, static_cast<int32_t>(v)), hn::Set(di, static_cast<int32_t>(valid - 1)));
    const auto offsets = hn::Mul(row, hn::Set(di, static_cast<int32_t>(words)));
    const auto lower_rows = hn::PromoteTo(di64, hn::LowerHalf(dhalf, offsets));
    const auto upper_rows = hn::PromoteTo(di64, hn::UpperHalf(dhalf, offsets));
    for (int64_t w = 0; w < words; ++w) {
      const auto lower = hn::BitCast(du, hn::GatherIndex(d64, codes + w, lower_rows));
      const auto upper = hn::BitCast(du, hn::GatherIndex(d64, codes + w, upper_rows));
      decode8(hn::ConcatEven(du, upper, lower), values + 16 * w * kTileRows + v);
      decode8(hn::ConcatOdd(du, upper, lower), values + (16 * w + 8) * kTileRows + v);
    }
  }
  const int64_t blocks = keys.dim / kBlock;
  for (int64_t r = 0; r < kTileRows; ++r) {
    const uint8_t* row_scales = keys.scales + (first + std::min(r, valid - 1)) * blocks;
    for (int64_t b = 0; b < blocks; ++b) scales[b * kTileRows + r] = E8M0ToF32(row_scales[b]);
  }
}

// Adds the terms of (query, head) pairs [pair, pair + kPairs) of the tile to
// their queries' rows of score ([count][kTileRows]). query and head name
// `pair` on entry and the pair after the last on return. Pairs are
// query-major, so each query's terms arrive in head order.
template <size_t kPairs>
HWY_INLINE void AddPairTerms(const IndexerScoresJob& job, int64_t pair, int64_t& query, int64_t& head,
                             const float* HWY_RESTRICT values, const float* HWY_RESTRICT scales,
                             float* HWY_RESTRICT score) {
  const DF df;
  const int64_t dim = job.keys.dim, blocks = dim / kBlock;
  const float* HWY_RESTRICT query_values = job.query_values + pair * dim;
  const float* HWY_RESTRICT query_scales = job.query_scales + pair * blocks;
  VF dot[kPairs][kRowVecs];
  for (size_t g = 0; g < kPairs; ++g) {
    for (size_t v = 0; v < kRowVecs; ++v) dot[g][v] = hn::Set(df, -0.0f);  // x + -0 == x for every x
  }
  for (int64_t b = 0; b < blocks; ++b) {
    VF sum[kPairs][kRowVecs];
    for (size_t g = 0; g < kPairs; ++g) {
      for (size_t v = 0; v < kRowVecs; ++v) sum[g][v] = hn::Zero(df);
    }
    for (int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) {
      VF key[kRowVecs];
      for (size_t v = 0; v < kRowVecs; ++v) key[v] = hn::Load(df, values + i * kTileRows + v * kN);
      for (size_t g = 0; g < kPairs; ++g) {
        const VF q = hn::Set(df, query_values[g * dim + i]);
        for (size_t v = 0; v < kRowVecs; ++v) sum[g][v] = hn::MulAdd(q, key[v], sum[g][v]);
      }
    }
    for (size_t g = 0; g < kPairs; ++g) {
      const VF query_scale = hn::Set(df, query_scales[g * blocks + b]);
      for (size_t v = 0; v < kRowVecs; ++v) {
        const VF key_scale = hn::Load(df, scales + b * kTileRows + v * kN);
        dot[g][v] = hn::Add(dot[g][v], Rounded(hn::Mul(hn::Mul(sum[g][v], query_scale), key_scale)));
      }
    }
  }
  const VF zero = hn::Zero(df);
  for (size_t g = 0; g < kPairs; ++g) {
    const VF weight = hn::Set(df, job.weights[pair + g]);
    float* HWY_RESTRICT row = score + query * kTileRows;
    for (size_t v = 0; v < kRowVecs; ++v) {
      const VF relu = hn::IfThenElseZero(hn::Gt(dot[g][v], zero), dot[g][v]);
      hn::Store(hn::Add(hn::Load(df, row + v * kN), Rounded(hn::Mul(weight, relu))), df, row + v * kN);
    }
    if (++head == job.heads) {
      head = 0;
      ++query;
    }
  }
}

}  // namespace indexer

inline void IndexerScoresRows(const IndexerScoresJob& job, int64_t begin, int64_t end) {
  using namespace indexer;  // NOLINT: the kernel's own helpers
  const DF df;
  const int64_t dim = job.keys.dim, blocks = dim / kBlock;
  const hwy::AlignedFreeUniquePtr<float[]> buffer =
      hwy::AllocateAligned<float>((dim + blocks + job.count) * kTileRows);
  float* values = buffer.get();
  float* scales = values + dim * kTileRows;
  float* score = scales + blocks * kTileRows;  // [count][kTileRows]
  for (int64_t first = begin; first < end; first += kTileRows) {
    const int64_t tile_end = std::min(first + kTileRows, end);
    // Gathers do not train the hardware prefetchers: fetch the next tile's
    // codes while this one computes.
    const uint8_t* next = job.keys.codes + tile_end * (dim / 2);
    const int64_t next_bytes = (std::min(tile_end + kTileRows, end) - tile_end) * (dim / 2);
    for (int64_t i = 0; i < next_bytes; i += 64) hwy::Prefetch(next + i);
    DecodeKeyTile(job.keys, first, tile_end - first, values, scales);
    // Runs [q, last) of consecutive queries that see the tile: their pairs
    // are consecutive, so the register tile may span queries (1-head shapes).
    for (int64_t q = 0; q < job.count;) {
      if (job.visible[q] <= first) {
        ++q;
        continue;
      }
      int64_t last = q + 1;
      while (last < job.count && job.visible[last] > first) ++last;
      std::fill(score + q * kTileRows, score + last * kTileRows, -0.0f);  // x + -0 == x for every x
      int64_t pair = q * job.heads, query = q, head = 0;
      for (; pair + static_cast<int64_t>(kGroup) <= last * job.heads; pair += kGroup) {
        AddPairTerms<kGroup>(job, pair, query, head, values, scales, score);
      }
      for (; pair < last * job.heads; ++pair) AddPairTerms<1>(job, pair, query, head, values, scales, score);
      for (; q < last; ++q) {
        const int64_t stored = std::min(job.visible[q], tile_end) - first;
        float* out = job.scores + q * job.score_stride + first;
        if (stored == kTileRows) {
          for (size_t v = 0; v < kRowVecs; ++v) {
            hn::StoreU(hn::Load(df, score + q * kTileRows + v * kN), df, out + v * kN);
          }
        } else {
          std::memcpy(out, score + q * kTileRows, stored * sizeof(float));
        }
      }
    }
  }
}

inline IndexerScoresKernel GetIndexerScoresKernel() { return {&IndexerScoresRows, hwy::TargetName(HWY_TARGET)}; }

}  // namespace HWY_NAMESPACE
}  // namespace dsv4
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
