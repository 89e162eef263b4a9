// The memory plan's choices on made-up machines: every weight resident when
// it fits beside the KV reserve and working memory, routed experts paged
// through what is left when not, a clear error naming the minimum when not
// even that fits; an explicit budget wins; the KV pool and the roofline.
#include "engine/runtime/memory_plan.h"

#include <gtest/gtest.h>

#include <cmath>

#include "engine/model/numerics.h"
#include "loader/expert_cache.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

class MemoryPlanTest : public ::testing::Test {
 protected:
  MemoryPlanTest() {
    weights_.dense_bytes = 2 * kGiB;
    weights_.experts = 1000;
    weights_.slot_bytes = 30 * kMiB;
    weights_.expert_bytes = weights_.experts * weights_.slot_bytes;
    weights_.all_bytes = weights_.dense_bytes + weights_.expert_bytes;
    kv_ = SequenceState::Size(config_, Numerics::kDefault);
    request_.model = "M";
  }
  MemoryLimits Machine(int64_t available) const {
    MemoryLimits limits;
    limits.available = available;
    limits.available_source = "MemAvailable";
    return limits;
  }
  MemoryPlan Plan(int64_t available) const { return PlanMemory(Machine(available), weights_, config_, kv_, request_); }
  // What the plan sets aside besides the weights.
  int64_t Overhead() const {
    const MemoryPlan p = Plan(1000 * kGiB);
    return p.kv_reserve_bytes + p.working_bytes;
  }

  testing::Golden golden_;
  Checkpoint checkpoint_{golden_.checkpoint_dir()};
  const ModelConfig& config_ = checkpoint_.config();
  WeightSizes weights_;
  KvSize kv_;
  MemoryPlanRequest request_;
};

TEST_F(MemoryPlanTest, EveryWeightResidentWhenItFits) {
  const MemoryPlan p = Plan(weights_.all_bytes + Overhead());
  EXPECT_FALSE(p.paging);
  EXPECT_EQ(p.weight_budget, weights_.all_bytes);
  EXPECT_EQ(p.resident_weight_bytes, weights_.all_bytes);
  EXPECT_EQ(p.kv_ram_pool, p.kv_reserve_bytes);
  EXPECT_NE(p.Summary().find("every weight resident"), std::string::npos) << p.Summary();
  EXPECT_NE(p.Summary().find("they fit in"), std::string::npos) << p.Summary();
}

TEST_F(MemoryPlanTest, ExpertsPagedThroughWhatIsLeft) {
  const MemoryPlan p = Plan(weights_.all_bytes + Overhead() - 1);
  EXPECT_TRUE(p.paging);
  EXPECT_EQ(p.weight_budget, weights_.all_bytes - 1);
  EXPECT_EQ(p.expert_slots, weights_.experts - 1);
  EXPECT_LE(p.resident_weight_bytes, p.weight_budget);
  EXPECT_GE(p.kv_ram_pool, p.kv_reserve_bytes);
  EXPECT_NE(p.Summary().find("routed experts paged through a cache of 999 of 1000 experts"), std::string::npos)
      << p.Summary();
  const MemoryPlan small = Plan(weights_.MinimumBudget() + Overhead());
  EXPECT_EQ(small.expert_slots, 2);
}

TEST_F(MemoryPlanTest, TooLittleMemoryNamesTheMinimum) {
  const std::string error = testing::ErrorOf([&] { Plan(weights_.MinimumBudget() + Overhead() - 1); });
  EXPECT_NE(error.find("M: "), std::string::npos) << error;
  EXPECT_NE(error.find("is too little"), std::string::npos) << error;
  EXPECT_NE(error.find("--mem-budget of at least " + FormatBytes(weights_.MinimumBudget())), std::string::npos)
      << error;
}

TEST_F(MemoryPlanTest, AnExplicitBudgetWins) {
  request_.mem_budget = 3 * kGiB;
  const MemoryPlan p = Plan(1000 * kGiB);
  EXPECT_FALSE(p.automatic);
  EXPECT_TRUE(p.paging);
  EXPECT_EQ(p.weight_budget, 3 * kGiB);
  EXPECT_EQ(p.expert_slots, kGiB / weights_.slot_bytes);
  // One that overcommits is honoured; the KV pool is the reserve and the line says so.
  const MemoryPlan over = Plan(3 * kGiB + 100 * kMiB);
  EXPECT_EQ(over.kv_ram_pool, over.kv_reserve_bytes);
  EXPECT_NE(over.Summary().find("less than the reserve"), std::string::npos) << over.Summary();
  request_.mem_budget = kGiB;
  const std::string error = testing::ErrorOf([&] { Plan(1000 * kGiB); });
  EXPECT_NE(error.find("less than the dense weights of M"), std::string::npos) << error;
  EXPECT_NE(error.find("give at least"), std::string::npos) << error;
}

TEST_F(MemoryPlanTest, TheReserveGrowsWithSequencesAndContextUpTo64k) {
  request_.context_tokens = 1000;
  const int64_t one = Plan(1000 * kGiB).kv_reserve_bytes;
  EXPECT_EQ(one, kv_.TotalBytes(1000));
  request_.parallel = 4;
  EXPECT_EQ(Plan(1000 * kGiB).kv_reserve_bytes, 4 * one);
  request_.context_tokens = 0;  // the model's context
  EXPECT_EQ(Plan(1000 * kGiB).kv_reserve_bytes,
            4 * kv_.TotalBytes(std::min<int64_t>(kKvReserveTokens, config_.max_position_embeddings)));
}

TEST_F(MemoryPlanTest, WorkingMemoryCoversTheRowsOfOneForwardCall) {
  request_.chunk = 512;
  const int64_t chunk = Plan(1000 * kGiB).working_bytes;
  const int64_t per_row = ForwardScratchBytes(config_, 1);
  // A known short prompt: its rows, not a whole chunk's, so more memory is left for experts.
  request_.longest_prompt = 64;
  EXPECT_EQ(Plan(1000 * kGiB).working_bytes, chunk - (512 - 64) * per_row);
  // Speculative verification rows and one-token prompts: at least 16 rows.
  request_.longest_prompt = 1;
  EXPECT_EQ(Plan(1000 * kGiB).working_bytes, chunk - (512 - 16) * per_row);
  // Sequences prefill side by side in one call, up to the chunk.
  request_.longest_prompt = 64;
  request_.parallel = 4;
  const MemoryPlan four = Plan(1000 * kGiB);
  EXPECT_EQ(four.working_bytes - 3 * config_.vocab_size * static_cast<int64_t>(sizeof(float)),
            chunk - (512 - 256) * per_row);
  request_.parallel = 16;
  EXPECT_EQ(Plan(1000 * kGiB).working_bytes - 15 * config_.vocab_size * static_cast<int64_t>(sizeof(float)), chunk);
  // The longest prompt never raises what a chunk bounds.
  request_.parallel = 1;
  request_.longest_prompt = 100000;
  EXPECT_EQ(Plan(1000 * kGiB).working_bytes, chunk);
}

TEST_F(MemoryPlanTest, SpillingSequencesShareThePool) {
  request_.kv_spill = true;
  request_.parallel = 2;
  const MemoryPlan p = Plan(weights_.all_bytes + Overhead() + 100 * kMiB);
  EXPECT_GE(p.kv_ram_per_sequence, 0);
  EXPECT_LE(p.kv_ram_per_sequence, p.kv_ram_pool / 2);
  request_.kv_ram_budget = 5 * kMiB;
  EXPECT_EQ(Plan(1000 * kGiB).kv_ram_per_sequence, 5 * kMiB);
  request_.kv_spill = false;
  EXPECT_EQ(Plan(1000 * kGiB).kv_ram_per_sequence, -1);
}

TEST_F(MemoryPlanTest, ContextFittingInvertsTheKvSize) {
  request_.context_tokens = 0;
  const MemoryPlan p = Plan(1000 * kGiB);
  for (const int64_t bytes : {kv_.fixed_bytes, kv_.TotalBytes(100), kv_.TotalBytes(5000) + 1}) {
    const int64_t t = p.ContextFitting(bytes);
    EXPECT_LE(kv_.TotalBytes(t), bytes);
    EXPECT_GT(kv_.TotalBytes(t + 1), bytes);
  }
  EXPECT_EQ(p.ContextFitting(kv_.fixed_bytes - 1), 0);
  EXPECT_EQ(p.ContextFitting(int64_t{1} << 50), p.context_tokens);
}

TEST_F(MemoryPlanTest, TheRooflineCountsDistinctExpertsAndMisses) {
  DecodeRead read;
  read.dense = 1000;
  read.head = 500;
  read.embedding_row = 10;
  read.routed_experts = 6000;
  const MemoryPlan resident = Plan(1000 * kGiB);
  const DecodeStepRead one = DecodeStepBytes(resident, config_, read, 1);
  EXPECT_DOUBLE_EQ(one.disk_bytes, 0);
  EXPECT_NEAR(one.ram_bytes(), 1000 + 500 + 10 + 6000 + kv_.fixed_bytes, 1e-6);
  EXPECT_DOUBLE_EQ(one.expert_bytes, 6000);
  DecodeReadRates rates;
  rates.ram_gbps = 10;
  rates.disk_gbps = 1;
  EXPECT_NEAR(PredictDecodeTokS(one, 1, rates), 10e9 / one.ram_bytes(), 1e-6);
  // A kernel slower than the RAM bounds its part; a faster one does not help.
  DecodeReadRates slow_fp4 = rates;
  slow_fp4.fp4_gbps = 5;
  slow_fp4.fp8_gbps = 20;
  EXPECT_NEAR(1 / PredictDecodeTokS(one, 1, slow_fp4), (one.ram_bytes() - 6000) / 10e9 + 6000 / 5e9, 1e-12);
  // What a step takes beyond its reads adds to it, once a step.
  DecodeReadRates with_overhead = rates;
  with_overhead.step_overhead_seconds = 0.002;
  EXPECT_NEAR(1 / PredictDecodeTokS(one, 1, with_overhead), one.ram_bytes() / 10e9 + 0.002, 1e-12);
  // Many sequences share the dense weights and, in part, the experts.
  const DecodeStepRead many = DecodeStepBytes(resident, config_, read, 16);
  EXPECT_LT(many.ram_bytes(), 16 * one.ram_bytes());
  EXPECT_GT(PredictDecodeTokS(many, 16, rates), PredictDecodeTokS(one, 1, rates));
  // Paging moves the share of experts the cache misses to the disk.
  const MemoryPlan paged = Plan(weights_.dense_bytes + weights_.expert_bytes / 4 + Overhead());
  const DecodeStepRead miss = DecodeStepBytes(paged, config_, read, 1);
  EXPECT_NEAR(miss.disk_bytes / 6000.0, 1 - static_cast<double>(paged.expert_slots) / weights_.experts, 1e-9);
  EXPECT_LT(PredictDecodeTokS(miss, 1, rates), PredictDecodeTokS(one, 1, rates));
}

TEST_F(MemoryPlanTest, TheExpertCacheFillsAsFreshMemoryPaysOff) {
  const MemoryPlan paged = Plan(weights_.dense_bytes + weights_.expert_bytes / 2 + Overhead());
  ASSERT_TRUE(paged.paging);
  DecodeStepRead step;
  step.expert_bytes = 200 * kMiB;
  step.disk_bytes = 200 * kMiB;
  // Touching no slower than reading: full from the start.
  ExpertCacheFill fill = PredictExpertCacheFill(paged, step, 2.0, 2.0);
  EXPECT_EQ(fill.start_slots, paged.expert_slots);
  EXPECT_EQ(fill.tokens_to_fill, 0);
  // Slower: the sample's slots (64 MiB of 30 MiB slots), then the empty
  // slots fall by e^-rate a decoded token.
  fill = PredictExpertCacheFill(paged, step, 2.0, 0.5);
  EXPECT_EQ(fill.start_slots, 3);
  const double rate = kGrowthShareOfReReads * 400.0 * 0.5 / (2.0 * 30 * weights_.experts);
  EXPECT_NEAR(fill.tokens_to_fill,
              std::log((weights_.experts - 3.0) / (weights_.experts - paged.expert_slots)) / rate, 1e-6);
  // Token by token, spending the share of each token's re-reads on fresh slots
  // fills the cache in as many tokens, to within one.
  double slots = 3;
  int tokens = 0;
  for (; slots < paged.expert_slots; ++tokens) {
    const double reread_seconds = (1 - slots / weights_.experts) * 400.0 * kMiB / 2e9;
    slots += kGrowthShareOfReReads * reread_seconds * 0.5e9 / (30.0 * kMiB);
  }
  EXPECT_NEAR(tokens, fill.tokens_to_fill, 1.0 + 0.01 * tokens);
  // Half the touch rate, twice the tokens; nothing paged, nothing to fill.
  EXPECT_NEAR(PredictExpertCacheFill(paged, step, 2.0, 0.25).tokens_to_fill, 2 * fill.tokens_to_fill, 1e-6);
  const MemoryPlan resident = Plan(1000 * kGiB);
  EXPECT_EQ(PredictExpertCacheFill(resident, step, 2.0, 0.5).start_slots, resident.expert_slots);
  EXPECT_EQ(PredictExpertCacheFill(resident, step, 2.0, 0.5).tokens_to_fill, 0);
}

}  // namespace
}  // namespace dsv4
