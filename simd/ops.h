// Row operations of the forward pass on Highway vectors (dynamic dispatch,
// like MatMul), each with the plain scalar reference it is tested against.
// Per-target bodies are in simd/ops-inl.h, for kernels that want to inline
// them. None of them starts threads.
#pragma once

#include <cstdint>
#include <vector>

namespace dsv4::ops {

// y = w * (x * r) with r = 1 / sqrt(mean(x^2) + eps), the sum of squares in
// f64: kSquarePartials partial sums (partial j takes the squares of x[i] with
// i = j mod kSquarePartials below the last multiple of kSquarePartials),
// added in order j = 0, 1, ..., then the remaining squares in index order.
// That order is every target's, so the result is bit-identical to the
// reference everywhere. w may be null (no weight); y may alias x.
inline constexpr int64_t kSquarePartials = 16;
void RmsNorm(const float* x, const float* w, int64_t n, double eps, float* y);
void RmsNormReference(const float* x, const float* w, int64_t n, double eps, float* y);

// The attention's wide weighted sums of value rows, for each head h <
// heads: acc[h * d + i] = fma(p[h * p_stride + e], rows[e][i], acc[h * d + i])
// in f64 for e = 0, 1, ..., n - 1 in that order (one fused multiply-add per
// element and row). The kernel passes over the rows once per group of four
// heads instead of once per head; every element's chain is the reference's.
void WeightedRowSums(const double* p, int64_t p_stride, int64_t heads, const float* const* rows, int64_t n,
                     int64_t d, double* acc);
void WeightedRowSumsReference(const double* p, int64_t p_stride, int64_t heads, const float* const* rows, int64_t n,
                              int64_t d, double* acc);

// Rotary embedding of interleaved pairs (re, im) = (x[2i], x[2i+1]) in f64:
//   x[2i] = re * cos_pairs[2i] + im * sin_pairs[2i]
//   x[2i+1] = im * cos_pairs[2i+1] + re * sin_pairs[2i+1],
// every product rounded before the sum, then one rounding to f32. With each
// pair's cosine twice in cos_pairs and its sine as (-sin, +sin) in sin_pairs
// this is re*cos - im*sin, re*sin + im*cos. n (even) floats of x.
void RotatePairs(float* x, const double* cos_pairs, const double* sin_pairs, int64_t n);
void RotatePairsReference(float* x, const double* cos_pairs, const double* sin_pairs, int64_t n);

// Attention softmax with a sink: with m = max_i s[i] (the sink takes no part
// in the max) and e[i] = exp(s[i] - m) in f32,
//   probs[i] = e[i] / (exp(sink - m) + sum_j e[j]),
// the denominator in f64. probs may alias scores; n >= 1.
void SoftmaxWithSink(const float* scores, int64_t n, float sink, float* probs);
void SoftmaxWithSinkReference(const float* scores, int64_t n, float sink, float* probs);

// In-place Walsh-Hadamard transform of x[0, n) scaled by n^-0.5, n a power of
// two, butterflies in f64: bit-identical to the scalar HadamardTransform
// (simd/number_formats.h), which is its reference.
void Hadamard(float* x, int64_t n);

// Indices of the k largest values (k > n: all), ordered by descending value,
// ties by ascending index. No NaN values.
std::vector<int32_t> TopK(const float* values, int64_t n, int64_t k);
std::vector<int32_t> TopKReference(const float* values, int64_t n, int64_t k);

}  // namespace dsv4::ops
