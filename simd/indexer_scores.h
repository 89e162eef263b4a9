// Scores of the lightning indexer of DeepSeek-V4's CSA layers: FP4 queries
// against FP4 compressed key rows. For query q and key row j < visible[q]
//   score[q][j] = sum over heads h of w[q][h] * relu(dot(query q head h, key j)).
//
// The result is defined exactly, so that the SIMD kernel equals its scalar
// reference bit for bit on every target and thread count: within one
// 32-element block the products of E2M1 values are multiples of 1/4 and their
// sum is exact in f32 in any order; then, in f32 without fused multiply-add,
//   P_b   = (block sum * query scale_b) * key scale_b
//   dot   = ((P_0 + P_1) + P_2) + ...              (block order)
//   score = ((w_0 * relu(dot_0)) + (w_1 * relu(dot_1))) + ...   (head order)
// with relu(x) = x > 0 ? x : +0.
#pragma once

#include <cstdint>

namespace dsv4 {

// rows x dim values in the layout of Fp4Encode (simd/number_formats.h) with
// 32-element blocks: codes [rows][dim / 2] (element 2i in the low nibble),
// one E8M0 scale byte per block, scales [rows][dim / 32]. dim is a multiple
// of 32.
struct Fp4Rows {
  const uint8_t* codes;
  const uint8_t* scales;
  int64_t rows;
  int64_t dim;
};

// count queries of heads_per_query heads each: heads.rows = count *
// heads_per_query (query-major), weights [count][heads_per_query].
struct IndexerQueries {
  Fp4Rows heads;
  int64_t count;
  int64_t heads_per_query;
  const float* weights;
};

// Writes scores[q * score_stride + j] for j < visible[q] (visible[q] <=
// keys.rows); leaves the rest of each score row alone. Runs on the OpenMP
// team (call it outside any parallel region); throws std::invalid_argument
// on inconsistent shapes.
void IndexerScores(const IndexerQueries& queries, const Fp4Rows& keys, const int64_t* visible, float* scores,
                   int64_t score_stride);
void IndexerScoresReference(const IndexerQueries& queries, const Fp4Rows& keys, const int64_t* visible,
                            float* scores, int64_t score_stride);

// The Highway target IndexerScores dispatches to.
const char* IndexerScoresTargetName();

}  // namespace dsv4
