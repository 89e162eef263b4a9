// The weight store and expert paging: a budget far below the model gives the
// same logits bit for bit, stays within its memory, and a shard truncated
// after load is an error at paging time, not a crash.
#include "engine/model/paged_experts.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "engine/runtime/scheduler.h"
#include "engine/runtime/sequence_runner.h"
#include "loader/error.h"
#include "loader/expert_cache.h"
#include "loader/process_memory.h"
#include "loader/synth.h"
#include "loader/weight_store.h"
#include "simd/matmul.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ErrorOf;
using testing::TempDir;

// The tiny fixture's shape with experts wide and many enough that they are
// most of the model (~55 MB of ~70 MB), as in DeepSeek-V4-Flash.
ModelConfig ExpertHeavyConfig() {
  ModelConfig config = TinyConfig();
  config.moe_intermediate_size = 512;
  SynthOverrides overrides;
  overrides.experts = 32;
  return ApplyOverrides(config, overrides);
}

// One checkpoint for the whole suite: synthesizing it takes a second or two.
// The SIMD kernels run, as in the command line.
class PagedExpertsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SetMatMulKernels(MatMulImpl::kSimd);
    dir_ = new TempDir();
    SynthesizeCheckpoint(ExpertHeavyConfig(), SynthOptions{}, checkpoint_dir());
    const Checkpoint checkpoint(checkpoint_dir());
    const Model model(checkpoint, Numerics::kDefault);
    reference_ = new std::vector<float>(RunLogits(model));
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete dir_;
    reference_ = nullptr;
    dir_ = nullptr;
    SetMatMulKernels(MatMulImpl::kReference);
  }
  static std::string checkpoint_dir() { return dir_->File("checkpoint"); }

  // A copy that a test may damage.
  static std::string CopyCheckpoint(const TempDir& into) {
    const std::string copy = into.File("checkpoint");
    fs::copy(checkpoint_dir(), copy, fs::copy_options::recursive);
    return copy;
  }

  static std::vector<int32_t> Prompt() { return {5, 17, 900, 3, 3, 64, 1000, 250, 7, 511, 42, 8}; }
  static std::vector<int32_t> DecodeTokens() { return {77, 12, 600, 1}; }

  // Logits of every prompt position (prefilled in chunks of 5) and of each decode token.
  static std::vector<float> RunLogits(const Model& model) {
    SequenceRunner runner(model, 5);
    std::vector<float> logits = runner.Feed(Prompt(), true);
    for (int32_t token : DecodeTokens()) {
      const std::vector<float> row = runner.Feed({token}, false);
      logits.insert(logits.end(), row.begin(), row.end());
    }
    return logits;
  }

  // The logits of the plain mapped checkpoint.
  static const std::vector<float>& ReferenceLogits() { return *reference_; }

  // Dense weights plus room for `slots` experts.
  static int64_t BudgetFor(int64_t slots) {
    const Checkpoint checkpoint(checkpoint_dir());
    const WeightStore everything(checkpoint, {});
    std::vector<FileExtent> parts;
    for (const std::string& name : ExpertTensorNames(checkpoint.config(), 0, 0)) {
      const TensorView& v = checkpoint.Get(name);
      parts.push_back({0, v.file_offset, v.bytes});
    }
    return everything.stats().dense_bytes + slots * ExpertCache::SlotBytes({parts});
  }

  // The shard model-<number, 5 digits>-of-...: 1 holds the embedding, 2 layer 0, the last the MTP block.
  static std::string Shard(const Checkpoint& checkpoint, int number) {
    for (const auto& shard : checkpoint.shards()) {
      char prefix[32];
    std::snprintf(prefix, sizeof(prefix), "model-%05d-of-", number);
    if (fs::path(shard->path()).filename().string().rfind(prefix, 0) == 0) {
        return shard->path();
      }
    }
    return "(no shard " + std::to_string(number) + ")";
  }

  static bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  }

  static TempDir* dir_;
  static std::vector<float>* reference_;
};

TempDir* PagedExpertsTest::dir_ = nullptr;
std::vector<float>* PagedExpertsTest::reference_ = nullptr;

TEST_F(PagedExpertsTest, BudgetFarBelowTheModelGivesTheSameLogitsBitForBit) {
  const std::vector<float>& reference = ReferenceLogits();
  StoredModel stored = LoadStoredModel(checkpoint_dir(), Numerics::kDefault, {BudgetFor(3), false, true});
  const WeightStoreStats& stats = stored.store->stats();
  ASSERT_TRUE(stats.paging);
  EXPECT_EQ(stats.cache_slots, 3);
  EXPECT_LT(stats.resident_bytes * 3, stats.dense_bytes + stats.expert_bytes);
  EXPECT_TRUE(SameBits(RunLogits(*stored.model), reference));
  const ExpertCacheStats cache = stored.store->expert_cache()->stats();
  EXPECT_EQ(cache.hits + cache.misses, stored.experts->acquisitions());
  EXPECT_GT(cache.misses, 3);
  EXPECT_GT(cache.prefetched, 0);  // the hash layers' experts are known from the token ids
  EXPECT_GE(cache.bytes_read, cache.misses * stats.slot_bytes / 2);
}

TEST_F(PagedExpertsTest, EveryExpertResidentGivesTheSameLogitsBitForBit) {
  const std::vector<float>& reference = ReferenceLogits();
  StoredModel stored = LoadStoredModel(checkpoint_dir(), Numerics::kDefault, {});
  EXPECT_FALSE(stored.store->stats().paging);
  EXPECT_EQ(stored.store->expert_cache(), nullptr);
  EXPECT_TRUE(SameBits(RunLogits(*stored.model), reference));
  // A budget the whole model fits in is the same as none.
  StoredModel roomy = LoadStoredModel(checkpoint_dir(), Numerics::kDefault, {int64_t{1} << 30, false, true});
  EXPECT_FALSE(roomy.store->stats().paging);
}

TEST_F(PagedExpertsTest, BufferedReadsGiveTheSameLogits) {
  const std::vector<float>& reference = ReferenceLogits();
  StoredModel stored = LoadStoredModel(checkpoint_dir(), Numerics::kDefault, {BudgetFor(2), false, false});
  EXPECT_FALSE(stored.store->expert_cache()->direct_io());
  EXPECT_TRUE(SameBits(RunLogits(*stored.model), reference));
}

// Peak RSS while loading and running under a budget stays within the budget
// plus what is not weights. The overhead allowed, 8 MiB, covers at this size
// the KV cache and activations (< 1 MiB), the decoded norm and
// hyper-connection vectors (< 1 MiB), embedding rows (< 0.5 MiB), the reader
// thread's stack and heap growth; about 1 MiB is measured. Leaking the
// mapped experts instead would add up to ~55 MB.
TEST_F(PagedExpertsTest, PeakRssStaysWithinTheBudget) {
  if (testing::kSanitized) GTEST_SKIP() << "a sanitizer's shadow memory counts in RSS";
  constexpr int64_t kOverhead = int64_t{8} << 20;
  const int64_t budget = BudgetFor(3);
  if (!ResetPeakRss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  const int64_t baseline = ProcessStatusBytes("VmRSS");
  {
    StoredModel stored = LoadStoredModel(checkpoint_dir(), Numerics::kDefault, {budget, false, true});
    RunLogits(*stored.model);
    EXPECT_LE(stored.store->stats().resident_bytes, budget);
  }
  const int64_t growth = ProcessStatusBytes("VmHWM") - baseline;
  RecordProperty("budget_bytes", std::to_string(budget));
  RecordProperty("peak_rss_growth_bytes", std::to_string(growth));
  EXPECT_LE(growth, budget + kOverhead) << "budget " << budget << ", baseline RSS " << baseline;
}

TEST_F(PagedExpertsTest, ShardTruncatedAfterLoadIsAnErrorWhenPaging) {
  TempDir scratch;
  const std::string dir = CopyCheckpoint(scratch);
  StoredModel stored = LoadStoredModel(dir, Numerics::kDefault, {BudgetFor(2), false, true});
  // Layer 0's shard (the embedding's, which stays mapped, is left alone).
  const std::string shard = Shard(*stored.checkpoint, 2);
  ASSERT_EQ(::truncate(shard.c_str(), 4096), 0);
  SequenceRunner runner(*stored.model, 0);
  const std::string error = ErrorOf([&] { runner.Feed(Prompt(), false); });
  EXPECT_THAT(error, HasSubstr(shard));
  EXPECT_THAT(error, HasSubstr("truncated"));
}

TEST_F(PagedExpertsTest, ResidentWeightsSurviveTruncationOfTheirShard) {
  TempDir scratch;
  const std::string dir = CopyCheckpoint(scratch);
  const std::vector<float>& reference = ReferenceLogits();
  StoredModel stored = LoadStoredModel(dir, Numerics::kDefault, {});
  const int shards = static_cast<int>(stored.checkpoint->shards().size());
  for (int number = 2; number < shards; ++number) {  // all but the embedding's and the MTP block's
    ASSERT_EQ(::truncate(Shard(*stored.checkpoint, number).c_str(), 0), 0);
  }
  EXPECT_TRUE(SameBits(RunLogits(*stored.model), reference));
}

// Speculative decoding runs the MTP block every drafting step, so the store
// keeps it resident then: with every shard but the embedding's truncated, the
// MTP drafts still run and change no token.
TEST_F(PagedExpertsTest, TheMtpBlockIsResidentWhenSpeculationRunsIt) {
  TempDir scratch;
  const std::string dir = CopyCheckpoint(scratch);
  WeightStoreOptions options;
  options.mtp_resident = true;
  StoredModel stored = LoadStoredModel(dir, Numerics::kDefault, options);
  const Checkpoint& checkpoint = *stored.checkpoint;
  EXPECT_GT(stored.store->stats().dense_bytes, WeightStore::Measure(checkpoint, false).dense_bytes);
  EXPECT_EQ(stored.store->stats().dense_bytes, WeightStore::Measure(checkpoint, true).dense_bytes);
  const int shards = static_cast<int>(checkpoint.shards().size());
  for (int number = 2; number <= shards; ++number) {
    ASSERT_EQ(::truncate(Shard(checkpoint, number).c_str(), 0), 0);
  }
  const auto generate = [&](bool speculative, Scheduler::Stats* stats) {
    SchedulerOptions scheduling;
    scheduling.speculative = speculative;
    Scheduler scheduler(*stored.model, nullptr, scheduling);
    GenerationRequest request;
    request.prompt = Prompt();
    request.sampling.max_tokens = 12;
    request.sampling.seed = 1;
    std::vector<int32_t> tokens;
    scheduler.Submit(std::move(request), [&](const GenerationUpdate& u) {
      for (const Sampled& s : u.tokens) tokens.push_back(s.token);
    });
    scheduler.Run();
    *stats = scheduler.stats();
    return tokens;
  };
  Scheduler::Stats plain, speculative;
  const std::vector<int32_t> expected = generate(false, &plain);
  EXPECT_EQ(generate(true, &speculative), expected);
  EXPECT_EQ(plain.mtp_rows, 0);
  EXPECT_GT(speculative.mtp_rows, 0);
  EXPECT_GT(speculative.drafts, 0);
}

TEST_F(PagedExpertsTest, BudgetBelowTheDenseWeightsIsAnError) {
  const Checkpoint checkpoint(checkpoint_dir());
  EXPECT_THAT(ErrorOf([&] { const WeightStore store(checkpoint, {1 << 20, false, true}); }),
              HasSubstr("is less than the dense weights"));
  EXPECT_THAT(ErrorOf([&] { const WeightStore store(checkpoint, {BudgetFor(1), false, true}); }),
              HasSubstr("at least 2 are needed"));
}

TEST_F(PagedExpertsTest, StoreRestoresTheMappingWhenItGoes) {
  const Checkpoint checkpoint(checkpoint_dir());
  const std::vector<float>& reference = ReferenceLogits();
  { const WeightStore store(checkpoint, {}); }
  const Model model(checkpoint, Numerics::kDefault);
  EXPECT_TRUE(SameBits(RunLogits(model), reference));
}

// ---- The cache on its own ---------------------------------------------------

class ExpertCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("experts.bin");
    bytes_.resize(200000);
    std::mt19937 random(7);
    for (uint8_t& b : bytes_) b = static_cast<uint8_t>(random());
    testing::WriteFile(path_, std::string(bytes_.begin(), bytes_.end()));
    // Ten items of three parts at unaligned offsets, listed out of file order.
    for (uint64_t i = 0; i < 10; ++i) {
      const uint64_t base = 1000 + i * 19000;
      items_.push_back({{0, base + 9000, 5000}, {0, base, 3001}, {0, base + 3001, 4000}});
    }
  }

  void ExpectContents(int64_t item, const ExpertCache::Pinned& pinned) const {
    ASSERT_EQ(pinned.parts.size(), items_[item].size());
    for (size_t p = 0; p < pinned.parts.size(); ++p) {
      const FileExtent& e = items_[item][p];
      EXPECT_EQ(std::memcmp(pinned.parts[p], bytes_.data() + e.offset, e.bytes), 0) << "item " << item;
    }
  }

  TempDir dir_;
  std::string path_;
  std::vector<uint8_t> bytes_;
  std::vector<std::vector<FileExtent>> items_;
};

TEST_F(ExpertCacheTest, ServesTheFileBytesAndCountsHitsAndMisses) {
  ExpertCache cache({path_}, items_, 2, true, false);
  EXPECT_EQ(cache.filled_slots(), 0);
  ExpectContents(3, cache.Acquire(3));
  EXPECT_EQ(cache.filled_slots(), 1);
  ExpectContents(3, cache.Acquire(3));
  ExpectContents(4, cache.Acquire(4));
  ExpectContents(5, cache.Acquire(5));  // evicts 4: 3 was used more often
  ExpectContents(3, cache.Acquire(3));
  const ExpertCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits, 2);
  EXPECT_EQ(stats.misses, 3);
  EXPECT_EQ(stats.prefetched, 0);
  // Both slots were fresh once; each miss read an item never read before.
  const SlotFillCosts costs = cache.fill_costs();
  EXPECT_EQ(costs.touch_bytes, 2 * cache.slot_bytes());
  EXPECT_GT(costs.read_bytes, 2 * cache.slot_bytes());  // three items, each laid out within a slot
  EXPECT_LE(costs.read_bytes, 3 * cache.slot_bytes());
  EXPECT_EQ(costs.reread_seconds, 0);
}

TEST_F(ExpertCacheTest, PrefetchedItemsAreKeptUntilUsed) {
  int64_t each_read_once = 0;
  {
    ExpertCache cache({path_}, items_, 3, true, false);
    for (int64_t item = 0; item < 6; ++item) ExpectContents(item, cache.Acquire(item));
    each_read_once = cache.stats().bytes_read;
  }
  ExpertCache cache({path_}, items_, 3, true, false);
  cache.Prefetch({0, 1, 2, 3, 4, 5});
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_LT(cache.stats().bytes_read, each_read_once);  // read-ahead stops when the slots are full
  for (int64_t item = 0; item < 6; ++item) ExpectContents(item, cache.Acquire(item));
  const ExpertCacheStats stats = cache.stats();
  EXPECT_EQ(stats.misses, 6);
  EXPECT_EQ(stats.bytes_read, each_read_once);  // no read-ahead was dropped before its use
}

TEST_F(ExpertCacheTest, AHintKeepsAResidentItemUntilItIsUsed) {
  ExpertCache cache({path_}, items_, 3, true, false);
  for (int64_t item : {0, 1, 2}) cache.Acquire(item);
  // 0 is the least recently used, and the first to go without the hint.
  cache.Prefetch({0, 5, 6});
  ExpectContents(5, cache.Acquire(5));
  ExpectContents(6, cache.Acquire(6));
  const int64_t hits = cache.stats().hits;
  ExpectContents(0, cache.Acquire(0));
  EXPECT_EQ(cache.stats().hits, hits + 1);
}

TEST_F(ExpertCacheTest, AcquiringWithEverySlotHeldIsAnError) {
  ExpertCache cache({path_}, items_, 2, true, false);
  const ExpertCache::Pinned a = cache.Acquire(0), b = cache.Acquire(1);
  EXPECT_THAT(ErrorOf([&] { cache.Acquire(2); }), HasSubstr("all 2 slots are held"));
}

TEST_F(ExpertCacheTest, ConcurrentPrefetchAndAcquireStayConsistent) {
  ExpertCache cache({path_}, items_, 3, true, false);
  std::atomic<bool> stop{false};
  std::thread hinter([&] {
    std::mt19937 random(1);
    while (!stop) cache.Prefetch({static_cast<int64_t>(random() % 10), static_cast<int64_t>(random() % 10)});
  });
  std::mt19937 random(2);
  for (int i = 0; i < 400; ++i) {
    const int64_t item = random() % 10;
    ExpectContents(item, cache.Acquire(item));
  }
  stop = true;
  hinter.join();
  const ExpertCacheStats stats = cache.stats();
  EXPECT_EQ(stats.hits + stats.misses, 400);
}

TEST(FreshSlotPaysOffTest, GrowsUntilMeasuredAndWheneverTouchingIsNoSlowerThanReading) {
  constexpr int64_t kSample = kFillCostSampleBytes;
  SlotFillCosts costs;
  EXPECT_TRUE(FreshSlotPaysOff(costs));  // nothing measured
  costs = {.touch_seconds = 10, .touch_bytes = kSample - 1, .read_seconds = 0.01, .read_bytes = 4 * kSample,
           .growth_touch_seconds = 10};
  EXPECT_TRUE(FreshSlotPaysOff(costs));  // too few bytes touched to judge
  costs.touch_bytes = 2 * kSample;
  costs.touch_seconds = costs.read_seconds / 2;  // touching a byte: as fast as reading one
  EXPECT_TRUE(FreshSlotPaysOff(costs));
}

TEST(FreshSlotPaysOffTest, WhereTouchingIsSlowerGrowthSpendsAShareOfWhatReReadsCost) {
  constexpr int64_t kSample = kFillCostSampleBytes;
  // Touching costs 8x reading per byte (0.3 GB/s against 2.4).
  SlotFillCosts costs{.touch_seconds = 8, .touch_bytes = kSample, .read_seconds = 1, .read_bytes = kSample};
  EXPECT_TRUE(FreshSlotPaysOff(costs));  // nothing spent on growth yet
  costs.growth_touch_seconds = 2;
  EXPECT_FALSE(FreshSlotPaysOff(costs));  // and no evicted item read again
  costs.reread_seconds = 0.99 * 2 / kGrowthShareOfReReads;
  EXPECT_FALSE(FreshSlotPaysOff(costs));
  costs.reread_seconds = 2 / kGrowthShareOfReReads;
  EXPECT_TRUE(FreshSlotPaysOff(costs));
}

TEST_F(ExpertCacheTest, FileTruncatedAfterOpenIsAnErrorNamingIt) {
  ExpertCache cache({path_}, items_, 2, true, false);
  ExpectContents(0, cache.Acquire(0));
  ASSERT_EQ(::truncate(path_.c_str(), 50000), 0);
  const std::string error = ErrorOf([&] { cache.Acquire(9); });
  EXPECT_THAT(error, HasSubstr(path_));
  EXPECT_THAT(error, HasSubstr("truncated"));
  ExpectContents(1, cache.Acquire(1));  // what is still in the file still reads
}

}  // namespace
}  // namespace dsv4
