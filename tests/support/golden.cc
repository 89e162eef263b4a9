#include "tests/support/golden.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace dsv4::testing {

Golden::Golden() {
  auto json = nlohmann::json::parse(ReadFile(DataPath("tiny-dsv4/golden.json")));
  int index = 0;
  for (const auto& s : json["sequences"]) {
    sequences_.push_back({index++, s["name"].get<std::string>(), s["prompt"].get<std::vector<int32_t>>(),
                          s["decode_tokens"].get<std::vector<int32_t>>()});
  }
  arrays_ = std::make_unique<SafetensorsFile>(DataPath("tiny-dsv4/golden.safetensors"));
}

std::string Golden::checkpoint_dir() const { return DataPath("tiny-dsv4/checkpoint"); }

bool Golden::Has(const GoldenSequence& s, const std::string& suffix) const {
  return arrays_->Find("s" + std::to_string(s.index) + "." + suffix) != nullptr;
}

std::vector<int64_t> Golden::Shape(const GoldenSequence& s, const std::string& suffix) const {
  return arrays_->Find("s" + std::to_string(s.index) + "." + suffix)->shape;
}

std::vector<float> Golden::Floats(const GoldenSequence& s, const std::string& suffix) const {
  const TensorView* v = arrays_->Find("s" + std::to_string(s.index) + "." + suffix);
  std::vector<float> out(v->NumElements());
  std::memcpy(out.data(), v->data, v->bytes);
  return out;
}

std::vector<int32_t> Golden::Ints(const GoldenSequence& s, const std::string& suffix) const {
  const TensorView* v = arrays_->Find("s" + std::to_string(s.index) + "." + suffix);
  std::vector<int32_t> out(v->NumElements());
  std::memcpy(out.data(), v->data, v->bytes);
  return out;
}

GoldenScore Score(const std::vector<float>& engine, const std::vector<float>& golden, int64_t vocab,
                  int64_t last_prompt_row, const Tolerance& tolerance) {
  GoldenScore score;
  score.rows = static_cast<int>(golden.size() / vocab);
  std::ostringstream failures;
  if (engine.size() != golden.size()) {
    score.failures = "row count differs";
    return score;
  }
  for (int r = 0; r < score.rows; ++r) {
    const float* a = engine.data() + r * vocab;
    const float* b = golden.data() + r * vocab;
    double d = 0, dot = 0, na = 0, nb = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      d = std::max(d, std::fabs(static_cast<double>(a[i]) - b[i]));
      dot += static_cast<double>(a[i]) * b[i];
      na += static_cast<double>(a[i]) * a[i];
      nb += static_cast<double>(b[i]) * b[i];
    }
    const double cosine = dot / std::sqrt(na * nb);
    if (d <= tolerance.row_close_d) ++score.close;
    if (std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b) ++score.top1_agree;
    score.worst_d = std::max(score.worst_d, std::isnan(d) ? INFINITY : d);
    score.min_cosine = std::min(score.min_cosine, std::isnan(cosine) ? -1.0 : cosine);
    if (!(cosine >= tolerance.min_cosine)) ++score.low_cosine_rows;
    if (r == last_prompt_row) score.last_prompt_d = std::isnan(d) ? INFINITY : d;
  }
  const double close_fraction = static_cast<double>(score.close) / score.rows;
  const double top1_fraction = static_cast<double>(score.top1_agree) / score.rows;
  if (close_fraction < tolerance.min_close_fraction) failures << " close rows " << close_fraction << ";";
  const int outliers = tolerance.outlier_fraction > 0
                           ? std::max(1, static_cast<int>(tolerance.outlier_fraction * score.rows))
                           : 0;
  if (score.low_cosine_rows > outliers) {
    failures << " " << score.low_cosine_rows << " rows below cosine " << tolerance.min_cosine << ";";
  }
  if (score.min_cosine < tolerance.floor_cosine) failures << " min cosine " << score.min_cosine << ";";
  if (top1_fraction < tolerance.min_top1_fraction) failures << " top-1 " << top1_fraction << ";";
  if (last_prompt_row >= 0 && !(score.last_prompt_d <= tolerance.last_prompt_d)) {
    failures << " last prompt row d " << score.last_prompt_d << ";";
  }
  score.failures = failures.str();
  return score;
}

}  // namespace dsv4::testing
