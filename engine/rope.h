// Rotary position embedding of DeepSeek-V4 (spec §4.4): interleaved pairs on
// the last rope_dims dims of a vector, per-layer base, YaRN frequency blending
// on compressed layers, and no YaRN magnitude scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "loader/config.h"

namespace dsv4 {

class Rope {
 public:
  // `yarn` is null for plain RoPE (window-only layers).
  Rope(int64_t rope_dims, double theta, const RopeScaling* yarn);

  // Rotates x[0, rope_dims) in place by the angles of `position`; the
  // inverse (conjugate) rotation undoes it. Angles are computed in double so
  // million-token positions keep full f32 precision.
  void Apply(float* x, int64_t position, bool inverse = false) const;

  // Rope for the attention of `layer`: compressed layers use
  // compress_rope_theta with YaRN, window-only layers rope_theta without.
  static Rope ForLayer(const ModelConfig& config, int64_t layer);

  const std::vector<double>& frequencies() const { return frequencies_; }

 private:
  std::vector<double> frequencies_;  // rope_dims / 2 of them
};

}  // namespace dsv4
