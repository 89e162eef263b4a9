#include "engine/model/hyper_connection.h"

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "engine/model/vector_ops.h"
#include "simd/matmul.h"

namespace dsv4 {
namespace {

// mix[row][m] = (fn[m] . streams[row]) / rms(streams[row]).
std::vector<float> Mixes(const ModelConfig& config, const HyperConnectionWeights& w, const float* streams,
                         int64_t rows) {
  const int64_t width = config.hc_mult * config.hidden_size, mixes = w.fn.rows;
  std::vector<float> mix(rows * mixes);
  MatMul(w.fn, streams, rows, mix.data());
  for (int64_t t = 0; t < rows; ++t) {
    const float* x = streams + t * width;
    double sum = 0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(x[i]) * x[i];
    const float r = static_cast<float>(1.0 / std::sqrt(sum / width + config.rms_norm_eps));
    for (int64_t m = 0; m < mixes; ++m) mix[t * mixes + m] *= r;
  }
  return mix;
}

// Sum over streams of pre[s] * streams[s] for one row.
void Collapse(const float* pre, const float* x, int64_t hc, int64_t hidden, float* out) {
  for (int64_t c = 0; c < hidden; ++c) {
    float sum = 0;
    for (int64_t s = 0; s < hc; ++s) sum += pre[s] * x[s * hidden + c];
    out[c] = sum;
  }
}

// The hc x hc mixing matrix of one row, row-major as the weights store it.
using MixMatrix = Eigen::Map<Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// Softmax over rows, then alternating column and row normalizations: one
// softmax, `iters` column and `iters - 1` row normalizations in all.
void Sinkhorn(float* data, int64_t n, int64_t iters, float eps) {
  MixMatrix c(data, n, n);
  // Each normalizer is evaluated into a vector first: the matrix changes
  // while it is divided.
  const Eigen::ArrayXf max = c.rowwise().maxCoeff();
  c.array().colwise() -= max;
  c = c.array().exp().matrix();
  const auto normalize_rows = [&](float add) {
    const Eigen::ArrayXf sums = c.rowwise().sum().array() + add;
    c.array().colwise() /= sums;
  };
  const auto normalize_columns = [&] {
    const Eigen::Array<float, 1, Eigen::Dynamic> sums = c.colwise().sum().array() + eps;
    c.array().rowwise() /= sums;
  };
  normalize_rows(0);
  c.array() += eps;
  normalize_columns();
  for (int64_t it = 1; it < iters; ++it) {
    normalize_rows(eps);
    normalize_columns();
  }
}

}  // namespace

void HcPre(const ModelConfig& config, const HyperConnectionWeights& w, const float* streams, int64_t rows,
           float* collapsed, HcMixing& mixing) {
  const int64_t hc = config.hc_mult, hidden = config.hidden_size, mixes = w.fn.rows;
  const float eps = static_cast<float>(config.hc_eps);
  const std::vector<float> mix = Mixes(config, w, streams, rows);
  mixing.post.resize(rows * hc);
  mixing.comb.resize(rows * hc * hc);
  for (int64_t t = 0; t < rows; ++t) {
    const float* m = mix.data() + t * mixes;
    std::vector<float> pre(hc);
    for (int64_t j = 0; j < hc; ++j) pre[j] = Sigmoid(m[j] * w.scale[0] + w.base[j]) + eps;
    for (int64_t j = 0; j < hc; ++j) {
      mixing.post[t * hc + j] = 2.0f * Sigmoid(m[hc + j] * w.scale[1] + w.base[hc + j]);
    }
    float* comb = mixing.comb.data() + t * hc * hc;
    for (int64_t i = 0; i < hc * hc; ++i) comb[i] = m[2 * hc + i] * w.scale[2] + w.base[2 * hc + i];
    Sinkhorn(comb, hc, config.hc_sinkhorn_iters, eps);
    Collapse(pre.data(), streams + t * hc * hidden, hc, hidden, collapsed + t * hidden);
  }
}

void HcPost(const ModelConfig& config, const HcMixing& mixing, const float* sublayer_out, int64_t rows,
            float* streams) {
  const int64_t hc = config.hc_mult, hidden = config.hidden_size;
  std::vector<float> old(hc * hidden);
  for (int64_t t = 0; t < rows; ++t) {
    float* x = streams + t * hc * hidden;
    std::copy(x, x + hc * hidden, old.begin());
    const float* post = mixing.post.data() + t * hc;
    const float* comb = mixing.comb.data() + t * hc * hc;
    const float* o = sublayer_out + t * hidden;
    for (int64_t k = 0; k < hc; ++k) {
      for (int64_t c = 0; c < hidden; ++c) {
        float sum = post[k] * o[c];
        for (int64_t j = 0; j < hc; ++j) sum += comb[j * hc + k] * old[j * hidden + c];
        x[k * hidden + c] = sum;
      }
    }
  }
}

void HcHead(const ModelConfig& config, const HyperConnectionWeights& w, const float* streams, int64_t rows,
            float* out) {
  const int64_t hc = config.hc_mult, hidden = config.hidden_size;
  const float eps = static_cast<float>(config.hc_eps);
  const std::vector<float> mix = Mixes(config, w, streams, rows);
  std::vector<float> pre(hc);
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t j = 0; j < hc; ++j) pre[j] = Sigmoid(mix[t * hc + j] * w.scale[0] + w.base[j]) + eps;
    Collapse(pre.data(), streams + t * hc * hidden, hc, hidden, out + t * hidden);
  }
}

}  // namespace dsv4
