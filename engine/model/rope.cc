#include "engine/model/rope.h"

#include <algorithm>
#include <cmath>

#include "simd/ops.h"

namespace dsv4 {

Rope::Rope(int64_t rope_dims, double theta, const RopeScaling* yarn) {
  const int64_t pairs = rope_dims / 2;
  frequencies_.resize(pairs);
  for (int64_t i = 0; i < pairs; ++i) {
    frequencies_[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(rope_dims));
  }
  if (!yarn) return;
  // Dimension index at which a frequency completes `rotations` turns over the
  // original context; below `low` frequencies stay, above `high` they are
  // divided by the factor, in between they blend linearly.
  auto correction_dim = [&](double rotations) {
    return rope_dims * std::log(yarn->original_max_position_embeddings / (rotations * 2 * M_PI)) /
           (2 * std::log(theta));
  };
  const double low = std::max(std::floor(correction_dim(yarn->beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(yarn->beta_slow)), static_cast<double>(rope_dims - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < pairs; ++i) {
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double smooth = 1.0 - ramp;
    frequencies_[i] = frequencies_[i] / yarn->factor * (1.0 - smooth) + frequencies_[i] * smooth;
  }
}

Rope::Angles Rope::AnglesAt(int64_t position) const {
  const double p = static_cast<double>(position);
  const size_t n = 2 * frequencies_.size();
  Angles angles{std::vector<double>(n), std::vector<double>(n), std::vector<double>(n)};
  for (size_t i = 0; i < frequencies_.size(); ++i) {
    const double angle = p * frequencies_[i];
    const double c = std::cos(angle), s = std::sin(angle);
    angles.cos[2 * i] = angles.cos[2 * i + 1] = c;
    angles.sin[2 * i] = -s;
    angles.sin[2 * i + 1] = s;
    angles.inverse_sin[2 * i] = s;
    angles.inverse_sin[2 * i + 1] = -s;
  }
  return angles;
}

void Rope::Apply(float* x, const Angles& angles, bool inverse) const {
  ops::RotatePairs(x, angles.cos.data(), inverse ? angles.inverse_sin.data() : angles.sin.data(),
                   static_cast<int64_t>(angles.cos.size()));
}

void Rope::Apply(float* x, int64_t position, bool inverse) const { Apply(x, AnglesAt(position), inverse); }

Rope Rope::ForLayer(const ModelConfig& config, int64_t layer) {
  if (config.CompressRatio(layer) == 0) return Rope(config.qk_rope_head_dim, config.rope_theta, nullptr);
  return Rope(config.qk_rope_head_dim, config.compress_rope_theta,
              config.rope_scaling.yarn ? &config.rope_scaling : nullptr);
}

}  // namespace dsv4
