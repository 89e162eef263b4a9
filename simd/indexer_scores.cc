#include "simd/indexer_scores.h"

#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

// Compile simd/indexer_scores-inl.h once per target in HWY_TARGETS and pick
// the best the CPU supports at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "simd/indexer_scores.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "simd/indexer_scores-inl.h"

#if HWY_ONCE
#include "simd/number_formats.h"

namespace dsv4 {

HWY_EXPORT(GetIndexerScoresKernel);

namespace {

constexpr int64_t kBlock = 32;  // elements per E8M0 scale

void CheckArguments(const IndexerQueries& queries, const Fp4Rows& keys, const int64_t* visible, const float* scores) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument("IndexerScores: " + what); };
  if (queries.count < 0 || queries.heads_per_query < 1 || keys.rows < 0) fail("bad shape");
  if (keys.dim < kBlock || keys.dim % kBlock != 0) fail("dim not a positive multiple of 32");
  if (queries.heads.dim != keys.dim) fail("query and key dims differ");
  if (queries.heads.rows != queries.count * queries.heads_per_query) fail("query rows != count * heads");
  if (queries.count == 0) return;
  if (visible == nullptr || queries.weights == nullptr || queries.heads.codes == nullptr ||
      queries.heads.scales == nullptr) {
    fail("null query argument");
  }
  for (int64_t q = 0; q < queries.count; ++q) {
    if (visible[q] < 0 || visible[q] > keys.rows) fail("visible out of [0, rows]");
  }
  if (keys.rows > 0 && (keys.codes == nullptr || keys.scales == nullptr || scores == nullptr)) {
    fail("null key or score");
  }
}

// An f32 value whose rounding the compiler may not fuse into the next
// addition (see Rounded in simd/indexer_scores-inl.h). x86 only.
inline float Rounded(float x) {
  asm("" : "+x"(x));
  return x;
}

// Below about 2^18 multiply-adds (some 50 us) per thread, waking the team
// costs more than the split saves (as for MatMul).
int TeamSize(const IndexerQueries& queries, int64_t rows) {
  const double work = static_cast<double>(queries.heads.rows) * static_cast<double>(queries.heads.dim) *
                      static_cast<double>(rows);
  const int64_t useful = static_cast<int64_t>(work / 262144.0) + 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), useful));
}

}  // namespace

const char* IndexerScoresTargetName() { return HWY_DYNAMIC_DISPATCH(GetIndexerScoresKernel)().target; }

void IndexerScores(const IndexerQueries& queries, const Fp4Rows& keys, const int64_t* visible, float* scores,
                   int64_t score_stride) {
  CheckArguments(queries, keys, visible, scores);
  int64_t rows = 0;  // rows that some query sees
  for (int64_t q = 0; q < queries.count; ++q) rows = std::max(rows, visible[q]);
  if (rows == 0) return;
  // Queries decoded once per call into unscaled values and f32 scales.
  const int64_t dim = keys.dim, blocks = dim / kBlock, query_rows = queries.heads.rows;
  std::vector<float> query_values(query_rows * dim), query_scales(query_rows * blocks);
  for (int64_t i = 0; i < query_rows * dim; ++i) {
    const uint8_t byte = queries.heads.codes[i / 2];
    query_values[i] = E2M1ToF32((i & 1) ? byte >> 4 : byte & 15);
  }
  for (int64_t i = 0; i < query_rows * blocks; ++i) query_scales[i] = E8M0ToF32(queries.heads.scales[i]);
  const IndexerScoresJob job{query_values.data(), query_scales.data(), queries.weights, queries.count,
                             queries.heads_per_query, keys, visible, scores, score_stride};
  const IndexerScoresKernel kernel = HWY_DYNAMIC_DISPATCH(GetIndexerScoresKernel)();
#pragma omp parallel num_threads(TeamSize(queries, rows))
  {
    // Contiguous row ranges in multiples of 64 rows: whole register tiles on
    // every target. Each row's scores are independent of the split.
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t per_thread = ((rows + n - 1) / n + 63) / 64 * 64;
    const int64_t begin = std::min(rows, per_thread * t), end = std::min(rows, begin + per_thread);
    if (begin < end) kernel.rows(job, begin, end);
  }
}

void IndexerScoresReference(const IndexerQueries& queries, const Fp4Rows& keys, const int64_t* visible,
                            float* scores, int64_t score_stride) {
  CheckArguments(queries, keys, visible, scores);
  const int64_t dim = keys.dim, blocks = dim / kBlock, heads = queries.heads_per_query;
  const auto element = [](const uint8_t* codes, int64_t i) {
    return E2M1ToF32((i & 1) ? codes[i / 2] >> 4 : codes[i / 2] & 15);
  };
  for (int64_t q = 0; q < queries.count; ++q) {
    for (int64_t j = 0; j < visible[q]; ++j) {
      const uint8_t* key_codes = keys.codes + j * (dim / 2);
      const uint8_t* key_scales = keys.scales + j * blocks;
      float score = -0.0f;  // x + -0 == x for every x: the sum starts at the first term
      for (int64_t h = 0; h < heads; ++h) {
        const uint8_t* query_codes = queries.heads.codes + (q * heads + h) * (dim / 2);
        const uint8_t* query_scales = queries.heads.scales + (q * heads + h) * blocks;
        float dot = -0.0f;
        for (int64_t b = 0; b < blocks; ++b) {
          float sum = 0;  // exact: multiples of 1/4 below 2^11 in magnitude
          for (int64_t i = b * kBlock; i < (b + 1) * kBlock; ++i) {
            sum += element(query_codes, i) * element(key_codes, i);
          }
          dot += Rounded(sum * E8M0ToF32(query_scales[b]) * E8M0ToF32(key_scales[b]));
        }
        const float relu = dot > 0.0f ? dot : 0.0f;
        score += Rounded(queries.weights[q * heads + h] * relu);
      }
      scores[q * score_stride + j] = score;
    }
  }
}

}  // namespace dsv4
#endif  // HWY_ONCE
