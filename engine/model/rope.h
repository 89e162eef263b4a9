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

  // The cosines and sines of one position's angles, computed in double so
  // that million-token positions keep full f32 precision, laid out for
  // ops::RotatePairs (each cosine twice; sines as (-sin, +sin), and negated
  // for the inverse rotation).
  struct Angles {
    std::vector<double> cos, sin, inverse_sin;
  };
  Angles AnglesAt(int64_t position) const;

  // Rotates x[0, rope_dims) in place by `angles`; the inverse (conjugate)
  // rotation undoes it. Callers rotating many vectors at one position (the
  // heads of a token) compute its angles once.
  void Apply(float* x, const Angles& angles, bool inverse = false) const;
  void Apply(float* x, int64_t position, bool inverse = false) const;

  // Rope for the attention of `layer`: compressed layers use
  // compress_rope_theta with YaRN, window-only layers rope_theta without.
  static Rope ForLayer(const ModelConfig& config, int64_t layer);

  const std::vector<double>& frequencies() const { return frequencies_; }

 private:
  std::vector<double> frequencies_;  // rope_dims / 2 of them
};

}  // namespace dsv4
