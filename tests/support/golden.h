// The tiny-dsv4 golden data (tests/data/tiny-dsv4) and the tolerance rules of
// its README, implemented in C++ so tests need no Python.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loader/safetensors.h"

namespace dsv4::testing {

struct GoldenSequence {
  int index = 0;  // N in the "sN." array names
  std::string name;
  std::vector<int32_t> prompt;
  std::vector<int32_t> decode_tokens;
};

class Golden {
 public:
  Golden();  // loads tests/data/tiny-dsv4/golden.{json,safetensors}
  const std::vector<GoldenSequence>& sequences() const { return sequences_; }
  std::string checkpoint_dir() const;
  // Array "s<index>.<suffix>" as floats (F32) or ints (I32).
  std::vector<float> Floats(const GoldenSequence& s, const std::string& suffix) const;
  std::vector<int32_t> Ints(const GoldenSequence& s, const std::string& suffix) const;
  std::vector<int64_t> Shape(const GoldenSequence& s, const std::string& suffix) const;
  bool Has(const GoldenSequence& s, const std::string& suffix) const;

 private:
  std::vector<GoldenSequence> sequences_;
  std::unique_ptr<SafetensorsFile> arrays_;
};

// Acceptance rules of one variant (README, "Tolerances").
struct Tolerance {
  double row_close_d;       // a row is close if max |diff| <= this
  double min_close_fraction;
  double min_cosine;        // every row but the allowed outliers
  double outlier_fraction;  // rows allowed below min_cosine (at least one when > 0)
  double floor_cosine;      // every row
  double min_top1_fraction;
  double last_prompt_d;     // max |diff| allowed on the last prompt row
};
// A: a knife-edge element near an FP8/FP4 rounding midpoint can move one row
// of a correct engine to cosine 0.96 (tests/data/tiny-dsv4/README.md).
inline constexpr Tolerance kToleranceA{2e-2, 0.60, 0.98, 0.01, 0.90, 0.97, 0.1};
inline constexpr Tolerance kToleranceB{1e-3, 0.99, 0.9999, 0.0, 0.9999, 0.99, 1e-3};
// C: the noisy variant's rules, which a bf16 activation path (Numerics::kFast)
// must meet against A's data (README, "Sensitivity ... to numerics").
inline constexpr Tolerance kToleranceC{1.0, 0.70, 0.90, 0.0, 0.90, 0.70, 1.5};

struct GoldenScore {
  int rows = 0;
  int close = 0;
  int top1_agree = 0;
  double worst_d = 0;
  double min_cosine = 1;
  int low_cosine_rows = 0;  // rows below the tolerance's min_cosine
  double last_prompt_d = 0;
  std::string failures;  // empty when the tolerance holds
};

// engine and golden: [rows][vocab]; last_prompt_row indexes the row that is
// the last prompt position.
GoldenScore Score(const std::vector<float>& engine, const std::vector<float>& golden, int64_t vocab,
                  int64_t last_prompt_row, const Tolerance& tolerance);

}  // namespace dsv4::testing
