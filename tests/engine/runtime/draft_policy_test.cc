// The rule that decides when speculative drafts pay (docs/speculative.md):
// the break-even from measured step costs, and each sequence's depths.
#include "engine/runtime/draft_policy.h"

#include <gtest/gtest.h>

namespace dsv4 {
namespace {

TEST(StepCost, TheDefaultHoldsUntilStepsOfTwoSizesWereSeen) {
  StepCost cost;
  EXPECT_EQ(cost.BreakEven(1), StepCost::kDefaultBreakEven);
  for (int i = 0; i < 20; ++i) cost.ObserveStep(1, 0.1);
  EXPECT_EQ(cost.BreakEven(1), StepCost::kDefaultBreakEven);
}

TEST(StepCost, BreakEvenFollowsTheMeasuredCosts) {
  // alpha 1 s for the weights, beta 0.25 s a row, the MTP block 0.15 s a row.
  StepCost cost;
  for (int i = 0; i < 50; ++i) cost.ObserveStep(1 + i % 4, 1.0 + 0.25 * (1 + i % 4));
  cost.ObserveMtp(4, 0.6);
  // One sequence: (0.25 + 0.15) / 1.25.
  EXPECT_NEAR(cost.BreakEven(1), 0.32, 1e-9);
  // Eight: (0.4 * 8) / (1 + 2) > 1: drafts never pay when compute binds.
  EXPECT_EQ(cost.BreakEven(8), 1.0);
  EXPECT_LT(cost.BreakEven(1), cost.BreakEven(2));
}

TEST(StepCost, OlderStepsWeighLess) {
  StepCost cost;
  for (int i = 0; i < 400; ++i) cost.ObserveStep(1 + i % 2, 1.0 + 1.0 * (1 + i % 2));  // beta 1
  for (int i = 0; i < 400; ++i) cost.ObserveStep(1 + i % 2, 1.0 + 0.1 * (1 + i % 2));  // then beta 0.1
  EXPECT_NEAR(cost.BreakEven(1), 0.1 / 1.1, 1e-3);
}

TEST(DraftRecord, EveryDepthIsTriedThenDraftedWhileItPays) {
  DraftRecord record;
  EXPECT_EQ(record.DraftsThatPay(3, 0.3), 3);
  // Depth 1 kept half the time, depth 2 a fifth of the times it is reached.
  for (int i = 0; i < 40; ++i) record.Verified(3, i % 2 == 0 ? (i % 10 == 0 ? 2 : 1) : 0);
  const double first = record.kept[0] / record.reached[0];
  EXPECT_GT(first, 0.4);
  EXPECT_LT(first, 0.6);
  // 0.5 pays at 0.3; 0.5 * 0.2 does not.
  EXPECT_EQ(record.DraftsThatPay(3, 0.3), 1);
  EXPECT_EQ(record.DraftsThatPay(1, 0.3), 1);
  EXPECT_EQ(record.DraftsThatPay(3, 0.05), 2);  // depth 3, reached too rarely, counts as depth 2: 0.5 * 0.2 * 0.2
  EXPECT_EQ(record.DraftsThatPay(3, 0.005), 3);
  EXPECT_EQ(record.DraftsThatPay(3, 0.6), 0);
}

TEST(DraftRecord, ASequenceWhoseDraftsDoNotPayProbesAndSkipsTheBlockMeanwhile) {
  DraftRecord record;
  for (int i = 0; i < DraftRecord::kTrialDrafts; ++i) {
    EXPECT_TRUE(record.NeedsMtpRows(record.DraftsThatPay(1, 0.3)));
    record.Verified(1, 0);
  }
  int probes = 0, rows = 0;
  for (int step = 0; step < 4 * (DraftRecord::kProbeSteps + 1); ++step) {
    const int64_t drafts = record.DraftsThatPay(1, 0.3);
    rows += record.NeedsMtpRows(drafts) ? 1 : 0;
    if (drafts > 0) {
      ++probes;
      record.Verified(drafts, 0);
    } else {
      ++record.undrafted_steps;
    }
  }
  EXPECT_EQ(probes, 4);
  EXPECT_EQ(rows, 4 * (DraftRecord::kWarmupSteps + 1));
  // Kept drafts bring the sequence back.
  for (int i = 0; i < 60; ++i) record.Verified(1, 1);
  EXPECT_EQ(record.DraftsThatPay(1, 0.3), 1);
}

}  // namespace
}  // namespace dsv4
