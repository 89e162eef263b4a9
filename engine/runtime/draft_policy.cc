#include "engine/runtime/draft_policy.h"

#include <algorithm>

namespace dsv4 {

void StepCost::ObserveStep(int64_t rows, double seconds) {
  const double x = static_cast<double>(rows);
  weight_ = weight_ * kForget + 1;
  rows_ = rows_ * kForget + x;
  seconds_ = seconds_ * kForget + seconds;
  rows2_ = rows2_ * kForget + x * x;
  rows_seconds_ = rows_seconds_ * kForget + x * seconds;
}

void StepCost::ObserveMtp(int64_t rows, double seconds) {
  if (rows <= 0) return;
  const double per_row = seconds / static_cast<double>(rows);
  mtp_row_seconds_ = mtp_row_seconds_ > 0 ? 0.9 * mtp_row_seconds_ + 0.1 * per_row : per_row;
}

double StepCost::BreakEven(int64_t sequences) const {
  // Weighted variance of the row counts: zero while every step had as many.
  const double spread = rows2_ * weight_ - rows_ * rows_;
  if (weight_ <= 0 || spread <= 1e-9 * weight_ * weight_) return kDefaultBreakEven;
  const double beta = std::max(0.0, (rows_seconds_ * weight_ - rows_ * seconds_) / spread);
  const double alpha = std::max(0.0, (seconds_ - beta * rows_) / weight_);
  const double b = static_cast<double>(sequences);
  const double step = alpha + beta * b;
  if (step <= 0) return kDefaultBreakEven;
  return std::min(1.0, (beta + mtp_row_seconds_) * b / step);
}

void DraftRecord::Verified(int64_t drafts, int64_t kept_drafts) {
  for (int64_t j = 0; j < drafts && j < kDepths; ++j) {
    ++made[j];
    if (j > kept_drafts) continue;  // not reached: an earlier draft was rejected
    reached[j] = reached[j] * kDecay + 1;
    kept[j] = kept[j] * kDecay + (j < kept_drafts ? 1 : 0);
  }
  undrafted_steps = 0;
}

int64_t DraftRecord::DraftsThatPay(int64_t limit, double break_even) const {
  limit = std::min<int64_t>(limit, kDepths);
  double reach = 1, acceptance = 0;  // chance every draft so far is kept; the last known depth's rate
  for (int64_t j = 0; j < limit; ++j) {
    if (made[j] < kTrialDrafts) continue;
    if (reached[j] >= kMinReached) acceptance = kept[j] / reached[j];
    reach *= acceptance;
    if (reach < break_even) return j == 0 && undrafted_steps >= kProbeSteps ? 1 : j;
  }
  return limit;
}

bool DraftRecord::NeedsMtpRows(int64_t drafts) const {
  return drafts > 0 || made[0] < kTrialDrafts || undrafted_steps + kWarmupSteps >= kProbeSteps;
}

}  // namespace dsv4
