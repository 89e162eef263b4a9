// When speculative drafts pay (docs/speculative.md, "When drafts pay"), from
// costs the scheduler measures as it runs.
//
// A decode step of B rows takes about alpha + beta B seconds: alpha reads
// the dense weights once, beta is what one more row adds (its experts and
// flops). A step of B sequences emits B tokens; a draft row adds beta plus
// the MTP block's row (gamma) and emits a token when it and every draft
// before it are kept. So a draft whose chance of that is r pays when
//   r / (beta + gamma) >= B / (alpha + beta B),
// which is the break-even below. At small B a step is bound by reading the
// weights (alpha dominates) and drafts pay at modest acceptance; at large B
// it becomes bound by compute (beta dominates) and they stop paying.
#pragma once

#include <array>
#include <cstdint>

namespace dsv4 {

// Least squares of decode-step seconds against rows, the older steps
// weighing less (each step multiplies the earlier weights by kForget).
class StepCost {
 public:
  // A decode-only step of `rows` rows took `seconds`.
  void ObserveStep(int64_t rows, double seconds);
  // The MTP block ran `rows` rows in `seconds`.
  void ObserveMtp(int64_t rows, double seconds);
  // The acceptance a draft must reach to pay in a step of `sequences`
  // decoding sequences; kDefaultBreakEven until steps of at least two
  // different sizes were seen.
  double BreakEven(int64_t sequences) const;

  static constexpr double kForget = 0.98;
  // About the rule on flash4's measured costs (verify step 1.30-1.40x a
  // plain step, MTP row 0.09-0.26x: 0.23-0.47 as the row counts or not).
  static constexpr double kDefaultBreakEven = 0.3;

 private:
  double weight_ = 0, rows_ = 0, seconds_ = 0, rows2_ = 0, rows_seconds_ = 0;  // weighted sums
  double mtp_row_seconds_ = 0;  // the MTP block's seconds per row, smoothed
};

// How one sequence's drafts fared at each depth (drafted; reached: every
// earlier draft of its step was kept; kept), recent ones weighing more.
struct DraftRecord {
  static constexpr int kDepths = 3;
  std::array<int64_t, kDepths> made{};
  std::array<double, kDepths> reached{}, kept{};
  int64_t undrafted_steps = 0;  // decode steps since its last draft

  // A step verified `drafts` drafts and kept the first `kept_drafts`.
  void Verified(int64_t drafts, int64_t kept_drafts);
  // How many drafts (at most `limit`) to make for the next step: each depth
  // is drafted kTrialDrafts times first; then depth j while the product of
  // the depths' acceptance rates (a depth reached too rarely yet counts as
  // the one before it) reaches `break_even`. A sequence whose first draft
  // does not pay tries one again every kProbeSteps steps.
  int64_t DraftsThatPay(int64_t limit, double break_even) const;
  // Whether the MTP block needs this sequence's rows now: while it drafts,
  // and for the kWarmupSteps before a probe (the block attends its recent
  // rows; skipped rows make the probe's draft approximate, never a token).
  bool NeedsMtpRows(int64_t drafts) const;

  static constexpr int64_t kTrialDrafts = 8;
  static constexpr double kMinReached = 4;  // decayed count before a depth's own rate counts
  static constexpr int64_t kProbeSteps = 128;
  static constexpr int64_t kWarmupSteps = 16;
  static constexpr double kDecay = 0.95;  // per verified draft: rates follow the text's recent drafts
};

}  // namespace dsv4
