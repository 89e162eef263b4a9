// Per-target bodies of the row operations of simd/ops.h. Include after
// hwy/highway.h inside a foreach_target.h pass (as simd/ops.cc does) to
// inline them into other kernels.
#if defined(DSV4_SIMD_OPS_INL_H_TARGET) == defined(HWY_TARGET_TOGGLE)
#ifdef DSV4_SIMD_OPS_INL_H_TARGET
#undef DSV4_SIMD_OPS_INL_H_TARGET
#else
#define DSV4_SIMD_OPS_INL_H_TARGET
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"
#include "simd/ops.h"

HWY_BEFORE_NAMESPACE();
namespace dsv4 {
namespace ops {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

// kHeads heads' sums over one vector of floats of every row: the
// accumulators stay in registers for the whole pass over the rows, and each
// row's vector, loaded once, serves all kHeads heads.
template <int kHeads>
HWY_INLINE void WeightedSumsOfVector(const double* HWY_RESTRICT p, int64_t p_stride, const float* const* rows,
                                     int64_t n, int64_t i, int64_t d, double* HWY_RESTRICT acc) {
  const hn::ScalableTag<float> df;
  const hn::Repartition<double, decltype(df)> dd;
  const hn::Half<decltype(df)> dh;
  const int64_t half = static_cast<int64_t>(hn::Lanes(dd));
  hn::Vec<decltype(dd)> lo[kHeads], hi[kHeads];
  for (int h = 0; h < kHeads; ++h) {
    lo[h] = hn::LoadU(dd, acc + h * d + i);
    hi[h] = hn::LoadU(dd, acc + h * d + i + half);
  }
  for (int64_t e = 0; e < n; ++e) {
    const auto v = hn::LoadU(df, rows[e] + i);
    const auto v_lo = hn::PromoteTo(dd, hn::LowerHalf(dh, v)), v_hi = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
    for (int h = 0; h < kHeads; ++h) {
      const auto weight = hn::Set(dd, p[h * p_stride + e]);
      lo[h] = hn::MulAdd(weight, v_lo, lo[h]);
      hi[h] = hn::MulAdd(weight, v_hi, hi[h]);
    }
  }
  for (int h = 0; h < kHeads; ++h) {
    hn::StoreU(lo[h], dd, acc + h * d + i);
    hn::StoreU(hi[h], dd, acc + h * d + i + half);
  }
}

// kHeads heads of WeightedRowSums.
template <int kHeads>
HWY_INLINE void WeightedRowSumsOfHeads(const double* HWY_RESTRICT p, int64_t p_stride, const float* const* rows,
                                       int64_t n, int64_t d, double* HWY_RESTRICT acc) {
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(hn::ScalableTag<float>()));
  int64_t i = 0;
  for (; i + lanes <= d; i += lanes) WeightedSumsOfVector<kHeads>(p, p_stride, rows, n, i, d, acc);
  for (; i < d; ++i) {
    for (int h = 0; h < kHeads; ++h) {
      for (int64_t e = 0; e < n; ++e) {
        acc[h * d + i] = std::fma(p[h * p_stride + e], static_cast<double>(rows[e][i]), acc[h * d + i]);
      }
    }
  }
}

// Each head's sums take the rows in order whatever the grouping, so the
// groups change how often a row is loaded and widened, never a bit.
inline void WeightedRowSums(const double* HWY_RESTRICT p, int64_t p_stride, int64_t heads, const float* const* rows,
                            int64_t n, int64_t d, double* HWY_RESTRICT acc) {
  int64_t h = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
  // 16 accumulators of AVX-512's 32 registers: the attention's tasks of 8
  // heads pass over their rows once.
  constexpr int kWideGroup = 8;
  for (; h + kWideGroup <= heads; h += kWideGroup) {
    WeightedRowSumsOfHeads<kWideGroup>(p + h * p_stride, p_stride, rows, n, d, acc + h * d);
  }
#endif
  constexpr int kGroup = 4;  // 8 accumulators: fits AVX2's 16 registers too
  for (; h + kGroup <= heads; h += kGroup) WeightedRowSumsOfHeads<kGroup>(p + h * p_stride, p_stride, rows, n, d, acc + h * d);
  for (; h < heads; ++h) WeightedRowSumsOfHeads<1>(p + h * p_stride, p_stride, rows, n, d, acc + h * d);
}

// sum x[i]^2 in f64 (each square is exact in f64) in the order that every
// target and RmsNormReference share (kSquarePartials).
inline double SumOfSquares(const float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<float> df;
  const hn::Repartition<double, decltype(df)> dd;
  const hn::Half<decltype(df)> dh;
  constexpr int64_t kFloats = hn::MaxLanes(df), kDoubles = kFloats / 2;
  static_assert(kSquarePartials % kFloats == 0, "whole vectors per partial-sum step");
  constexpr int64_t kVecs = kSquarePartials / kDoubles;
  // Vector v holds partial sums v * kDoubles .. (v + 1) * kDoubles - 1.
  hn::Vec<decltype(dd)> partial[kVecs];
  for (auto& p : partial) p = hn::Zero(dd);
  const int64_t whole = n / kSquarePartials * kSquarePartials;
  for (int64_t i = 0; i < whole; i += kSquarePartials) {
    for (int64_t k = 0; k < kSquarePartials / kFloats; ++k) {
      const auto v = hn::LoadU(df, x + i + k * kFloats);
      const auto lo = hn::PromoteTo(dd, hn::LowerHalf(dh, v)), hi = hn::PromoteTo(dd, hn::UpperHalf(dh, v));
      partial[2 * k] = hn::MulAdd(lo, lo, partial[2 * k]);
      partial[2 * k + 1] = hn::MulAdd(hi, hi, partial[2 * k + 1]);
    }
  }
  HWY_ALIGN double sums[kSquarePartials];
  for (int64_t k = 0; k < kVecs; ++k) hn::Store(partial[k], dd, sums + k * kDoubles);
  double sum = 0;
  for (const double p : sums) sum += p;
  for (int64_t i = whole; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

inline void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* y) {
  const hn::ScalableTag<float> d;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
  const float r = static_cast<float>(1.0 / std::sqrt(SumOfSquares(x, n) / static_cast<double>(n) + eps));
  const auto vr = hn::Set(d, r);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto scaled = hn::Mul(hn::LoadU(d, x + i), vr);
    hn::StoreU(w ? hn::Mul(hn::LoadU(d, w + i), scaled) : scaled, d, y + i);
  }
  for (; i < n; ++i) y[i] = (w ? w[i] : 1.0f) * (x[i] * r);
}

// (re, im) and (im, re) of each pair in f64 lanes: one multiply by the
// cosines, one by the signed sines, one add, one demotion.
inline void RotatePairs(float* HWY_RESTRICT x, const double* HWY_RESTRICT cos_pairs,
                        const double* HWY_RESTRICT sin_pairs, int64_t n) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dd));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto v = hn::PromoteTo(dd, hn::LoadU(df, x + i));
    const auto rotated =
        hn::Add(hn::Mul(v, hn::LoadU(dd, cos_pairs + i)), hn::Mul(hn::Shuffle01(v), hn::LoadU(dd, sin_pairs + i)));
    hn::StoreU(hn::DemoteTo(df, rotated), df, x + i);
  }
  for (; i < n; i += 2) {
    const double re = x[i], im = x[i + 1];
    x[i] = static_cast<float>(re * cos_pairs[i] + im * sin_pairs[i]);
    x[i + 1] = static_cast<float>(im * cos_pairs[i + 1] + re * sin_pairs[i + 1]);
  }
}

inline void SoftmaxWithSink(const float* scores, int64_t n, float sink, float* probs) {
  const hn::ScalableTag<float> df;
  const hn::Repartition<double, decltype(df)> dd;
  const hn::Half<decltype(df)> dh;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  int64_t i = 0;
  auto vmax = hn::Set(df, -HUGE_VALF);
  for (; i + lanes <= n; i += lanes) vmax = hn::Max(vmax, hn::LoadU(df, scores + i));
  float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; i < n; ++i) max = std::max(max, scores[i]);
  // Exponentials (the tail through a padded vector, so every e[i] comes from
  // the same approximation; -104 and below give exactly 0) and their f64 sum.
  const auto vm = hn::Set(df, max);
  auto z0 = hn::Zero(dd), z1 = hn::Zero(dd);
  const auto exp_and_sum = [&](const float* in, float* out) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, in), vm));
    hn::StoreU(e, df, out);
    z0 = hn::Add(z0, hn::PromoteTo(dd, hn::LowerHalf(dh, e)));
    z1 = hn::Add(z1, hn::PromoteTo(dd, hn::UpperHalf(dh, e)));
  };
  for (i = 0; i + lanes <= n; i += lanes) exp_and_sum(scores + i, probs + i);
  if (i < n) {
    HWY_ALIGN float in[hn::MaxLanes(df)], out[hn::MaxLanes(df)];
    for (int64_t j = 0; j < lanes; ++j) in[j] = i + j < n ? scores[i + j] : max - 1000.0f;
    exp_and_sum(in, out);
    for (int64_t j = 0; i + j < n; ++j) probs[i + j] = out[j];
  }
  const double z = hn::GetLane(hn::SumOfLanes(dd, hn::Add(z0, z1))) + std::exp(static_cast<double>(sink) - max);
  const auto vz = hn::Set(dd, z);
  for (i = 0; i + lanes <= n; i += lanes) {
    const auto e = hn::LoadU(df, probs + i);
    const auto lo = hn::DemoteTo(dh, hn::Div(hn::PromoteTo(dd, hn::LowerHalf(dh, e)), vz));
    const auto hi = hn::DemoteTo(dh, hn::Div(hn::PromoteTo(dd, hn::UpperHalf(dh, e)), vz));
    hn::StoreU(hn::Combine(df, hi, lo), df, probs + i);
  }
  for (; i < n; ++i) probs[i] = static_cast<float>(probs[i] / z);
}

// Like HadamardTransform: butterflies in f64, one rounding to f32 at the end.
// Stages with stride >= lanes are whole-vector butterflies; the smaller
// strides pair lanes of one vector (lane i with lane i ^ stride). Each
// butterfly computes exactly a + b and a - b, in the scalar's stage order.
inline void Hadamard(float* HWY_RESTRICT x, int64_t n) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> df;
  const hn::RebindToSigned<decltype(dd)> di;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(dd));
  std::vector<double> v(x, x + n);
  double* HWY_RESTRICT p = v.data();
  if (n < 2 * lanes) {
    for (int64_t stride = 1; stride < n; stride *= 2) {
      for (int64_t base = 0; base < n; base += 2 * stride) {
        for (int64_t i = base; i < base + stride; ++i) {
          const double a = p[i], b = p[i + stride];
          p[i] = a + b;
          p[i + stride] = a - b;
        }
      }
    }
  } else {
    constexpr size_t kMaxStages = 8;  // log2 of the most f64 lanes of any target, with room
    using Indices = decltype(hn::IndicesFromVec(dd, hn::Zero(di)));
    Indices partner[kMaxStages];
    hn::Mask<decltype(dd)> upper[kMaxStages];
    size_t stages = 0;
    const auto iota = hn::Iota(di, 0);
    for (int64_t stride = 1; stride < lanes; stride *= 2, ++stages) {
      partner[stages] = hn::IndicesFromVec(dd, hn::Xor(iota, hn::Set(di, stride)));
      upper[stages] = hn::RebindMask(dd, hn::Ne(hn::And(iota, hn::Set(di, stride)), hn::Zero(di)));
    }
    for (int64_t i = 0; i < n; i += lanes) {
      auto w = hn::LoadU(dd, p + i);
      for (size_t stage = 0; stage < stages; ++stage) {
        const auto other = hn::TableLookupLanes(w, partner[stage]);
        w = hn::IfThenElse(upper[stage], hn::Sub(other, w), hn::Add(w, other));
      }
      hn::StoreU(w, dd, p + i);
    }
    for (int64_t stride = lanes; stride < n; stride *= 2) {
      for (int64_t base = 0; base < n; base += 2 * stride) {
        for (int64_t i = base; i < base + stride; i += lanes) {
          const auto a = hn::LoadU(dd, p + i), b = hn::LoadU(dd, p + i + stride);
          hn::StoreU(hn::Add(a, b), dd, p + i);
          hn::StoreU(hn::Sub(a, b), dd, p + i + stride);
        }
      }
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(n));
  const auto vs = hn::Set(dd, scale);
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) hn::StoreU(hn::DemoteTo(df, hn::Mul(hn::LoadU(dd, p + i), vs)), df, x + i);
  for (; i < n; ++i) x[i] = static_cast<float>(p[i] * scale);
}

// Ranks by descending value, ties by ascending index.
struct RanksBefore {
  const float* values;
  bool operator()(int32_t a, int32_t b) const { return values[a] > values[b] || (values[a] == values[b] && a < b); }
};

// The k best of values[0, n) in rank order. A heap keeps the k best so far
// with the worst on top; a later index displaces it only with a strictly
// larger value, so whole vectors with no lane above the worst kept value are
// skipped with one compare — after the first few hundred rows almost all of
// them (the indexer's top-k over up to 262,144 rows per query).
inline void TopK(const float* HWY_RESTRICT values, int64_t n, int64_t k, std::vector<int32_t>& best) {
  const hn::ScalableTag<float> df;
  const int64_t lanes = static_cast<int64_t>(hn::Lanes(df));
  const RanksBefore before{values};
  k = std::max<int64_t>(0, std::min(k, n));
  best.resize(k);
  for (int64_t i = 0; i < k; ++i) best[i] = static_cast<int32_t>(i);
  std::make_heap(best.begin(), best.end(), before);
  const auto offer = [&](int64_t i) {
    if (values[i] > values[best.front()]) {
      std::pop_heap(best.begin(), best.end(), before);
      best.back() = static_cast<int32_t>(i);
      std::push_heap(best.begin(), best.end(), before);
    }
  };
  int64_t i = k;
  if (k > 0) {
    for (; i + lanes <= n; i += lanes) {
      if (hn::AllFalse(df, hn::Gt(hn::LoadU(df, values + i), hn::Set(df, values[best.front()])))) continue;
      for (int64_t j = i; j < i + lanes; ++j) offer(j);
    }
    for (; i < n; ++i) offer(i);
  }
  std::sort(best.begin(), best.end(), before);
}

}  // namespace HWY_NAMESPACE
}  // namespace ops
}  // namespace dsv4
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
