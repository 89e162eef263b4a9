// The scheduler on the tiny fixture: many requests per forward call give the
// tokens each gives alone (at any --parallel), prefix reuse changes nothing
// but the work done, cancellation and failures end only their requests.
#include "engine/runtime/scheduler.h"

#include <gtest/gtest.h>

#include <map>
#include <stdexcept>

#include "simd/matmul.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kNone;
  std::string error;
  Usage usage;
};

GenerationRequest Request(std::vector<int32_t> prompt, uint64_t seed, double temperature, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.seed = seed;
  r.sampling.temperature = temperature;
  r.sampling.top_p = 0.9;
  r.sampling.max_tokens = max_tokens;
  r.sampling.top_logprobs = 2;
  return r;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { SetMatMulKernels(MatMulImpl::kSimd); }
  void TearDown() override { SetMatMulKernels(MatMulImpl::kReference); }

  // Submits every request to one scheduler and runs it to the end; its
  // statistics go to `stats` if given.
  std::vector<Outcome> RunAll(const std::vector<GenerationRequest>& requests, SchedulerOptions options,
                              const Model* model = nullptr, Scheduler::Stats* stats = nullptr) {
    Scheduler scheduler(model ? *model : model_, nullptr, options);
    std::vector<Outcome> outcomes(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      GenerationRequest copy;
      copy.prompt = requests[i].prompt;
      copy.sampling = requests[i].sampling;
      scheduler.Submit(std::move(copy), [&outcomes, i](const GenerationUpdate& u) {
        for (const Sampled& s : u.tokens) {
          outcomes[i].tokens.push_back(s.token);
          outcomes[i].logprobs.push_back(s.logprob);
        }
        if (u.finish != FinishReason::kNone) {
          outcomes[i].finish = u.finish;
          outcomes[i].error = u.error;
          outcomes[i].usage = u.usage;
        }
      });
    }
    scheduler.Run();
    if (stats) *stats = scheduler.stats();
    return outcomes;
  }

  std::vector<GenerationRequest> SixteenRequests() {
    std::vector<GenerationRequest> requests;
    for (int i = 0; i < 16; ++i) {
      requests.push_back(Request(testing::TokenIds(5 + 11 * i, i), 1000 + i, i % 4 == 0 ? 0.0 : 0.8, 6 + i % 5));
    }
    return requests;
  }

  testing::Golden golden_;
  Checkpoint checkpoint_{golden_.checkpoint_dir()};
  Model model_{checkpoint_, Numerics::kDefault};
};

void ExpectSameOutcomes(const std::vector<Outcome>& a, const std::vector<Outcome>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << "request " << i;
    EXPECT_EQ(a[i].logprobs, b[i].logprobs) << "request " << i;
    EXPECT_EQ(a[i].finish, b[i].finish) << "request " << i;
  }
}

TEST_F(SchedulerTest, SampledOutputsAreEqualAtParallelOneAndSixteen) {
  const auto requests = SixteenRequests();
  SchedulerOptions one;
  one.max_sequences = 1;
  SchedulerOptions sixteen;
  sixteen.max_sequences = 16;
  sixteen.step_tokens = 37;  // prompts are split into chunks beside decode rows
  const auto alone = RunAll(requests, one);
  const auto together = RunAll(requests, sixteen);
  ExpectSameOutcomes(alone, together);
  for (size_t i = 0; i < requests.size(); ++i) {
    // Length, or the end-of-sentence token (sampled at temperature > 0).
    const int64_t generated = alone[i].tokens.size();
    EXPECT_TRUE(alone[i].finish == FinishReason::kLength ? generated == requests[i].sampling.max_tokens
                                                         : alone[i].finish == FinishReason::kStop &&
                                                               alone[i].tokens.back() == model_.config().eos_token_id)
        << "request " << i;
    EXPECT_EQ(alone[i].usage.prompt_tokens, static_cast<int64_t>(requests[i].prompt.size()));
  }
}

TEST_F(SchedulerTest, GreedyMatchesTheGoldenDecode) {
  const testing::GoldenSequence& s = golden_.sequences()[0];  // short_greedy
  auto r = Request(s.prompt, 1, 0.0, static_cast<int64_t>(s.decode_tokens.size()));
  const auto out = RunAll({r}, SchedulerOptions{});
  EXPECT_EQ(out[0].tokens, s.decode_tokens);
}

TEST_F(SchedulerTest, PrefixReuseGivesTheSameTokens) {
  // A shared 300-token "system prompt", then different endings.
  std::vector<GenerationRequest> requests;
  const std::vector<int32_t> shared = testing::TokenIds(300, 7);
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> prompt = shared;
    const std::vector<int32_t> tail = testing::TokenIds(10 + i, 20 + i);
    prompt.insert(prompt.end(), tail.begin(), tail.end());
    requests.push_back(Request(prompt, 50 + i, 0.7, 5));
  }
  SchedulerOptions cold;
  cold.max_sequences = 1;
  SchedulerOptions warm = cold;
  warm.prefix_cache_bytes = int64_t{1} << 30;
  const auto without = RunAll(requests, cold);
  const auto with = RunAll(requests, warm);
  ExpectSameOutcomes(without, with);
  EXPECT_EQ(with[0].usage.cached_tokens, 0);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(with[i].usage.cached_tokens, 256) << i;  // the last multiple of 128 shared
  // A repeat of a whole prompt reuses up to its final token.
  const auto again = RunAll({requests[0], requests[0]}, warm);
  EXPECT_EQ(again[1].usage.cached_tokens, static_cast<int64_t>(requests[0].prompt.size()) - 1);
  EXPECT_EQ(again[0].tokens, again[1].tokens);
}

TEST_F(SchedulerTest, ASharedPrefixIsPrefilledOnceAtAnyParallel) {
  // Six prompts behind one 300-token preamble, all admitted at once: the
  // first computes the preamble, the others wait for its checkpoint at 256.
  std::vector<GenerationRequest> requests;
  const std::vector<int32_t> shared = testing::TokenIds(300, 9);
  int64_t prompt_rows = 0;
  for (int i = 0; i < 6; ++i) {
    std::vector<int32_t> prompt = shared;
    const std::vector<int32_t> tail = testing::TokenIds(3 + i, 40 + i);
    prompt.insert(prompt.end(), tail.begin(), tail.end());
    prompt_rows += static_cast<int64_t>(prompt.size());
    requests.push_back(Request(prompt, 70 + i, 0.7, 4));
  }
  SchedulerOptions options;
  options.max_sequences = 6;
  options.step_tokens = 64;
  options.prefix_cache_bytes = int64_t{1} << 30;
  Scheduler::Stats stats;
  const auto together = RunAll(requests, options, nullptr, &stats);
  EXPECT_EQ(stats.prefill_rows, prompt_rows - 5 * 256);
  SchedulerOptions alone;
  const auto separate = RunAll(requests, alone);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(together[i].tokens, separate[i].tokens) << "request " << i;
    EXPECT_EQ(together[i].usage.cached_tokens, i == 0 ? 0 : 256) << "request " << i;
  }
}

TEST_F(SchedulerTest, StopTokenIdsAndMaxTokensZero) {
  const auto first = RunAll({Request(testing::TokenIds(12, 1), 3, 0.0, 8)}, SchedulerOptions{});
  ASSERT_GE(first[0].tokens.size(), 3u);
  auto r = Request(testing::TokenIds(12, 1), 3, 0.0, 8);
  r.sampling.stop_token_ids = {first[0].tokens[2]};
  auto zero = Request(testing::TokenIds(12, 1), 3, 0.0, 0);
  const auto out = RunAll({r, zero}, SchedulerOptions{});
  EXPECT_EQ(out[0].finish, FinishReason::kStop);
  EXPECT_EQ(out[0].tokens, std::vector<int32_t>(first[0].tokens.begin(), first[0].tokens.begin() + 3));
  EXPECT_EQ(out[1].finish, FinishReason::kLength);
  EXPECT_TRUE(out[1].tokens.empty());
}

TEST_F(SchedulerTest, InvalidRequestsAreRefused) {
  Scheduler scheduler(model_, nullptr, SchedulerOptions{});
  const auto submit = [&](GenerationRequest r) { scheduler.Submit(std::move(r), nullptr); };
  EXPECT_NE(testing::ErrorOf([&] { submit(Request({}, 1, 0, 1)); }).find("prompt is empty"), std::string::npos);
  EXPECT_NE(testing::ErrorOf([&] { submit(Request({5000}, 1, 0, 1)); }).find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(testing::ErrorOf([&] { submit(Request({5}, 1, -1, 1)); }).find("temperature"), std::string::npos);
  auto stops = Request({5}, 1, 0, 1);
  stops.sampling.stop = {"x"};
  EXPECT_NE(testing::ErrorOf([&] { submit(stops); }).find("tokenizer"), std::string::npos);
  EXPECT_TRUE(scheduler.Idle());
}

TEST_F(SchedulerTest, CancelEndsOnlyThatRequestAndFreesItsSlot) {
  SchedulerOptions options;
  options.max_sequences = 2;
  Scheduler scheduler(model_, nullptr, options);
  std::map<int64_t, Outcome> out;
  const auto record = [&out](const GenerationUpdate& u) {
    for (const Sampled& s : u.tokens) out[u.request_id].tokens.push_back(s.token);
    if (u.finish != FinishReason::kNone) out[u.request_id].finish = u.finish;
  };
  const int64_t a = scheduler.Submit(Request(testing::TokenIds(8, 1), 1, 0.0, 50), record);
  const int64_t b = scheduler.Submit(Request(testing::TokenIds(8, 2), 2, 0.0, 5), record);
  const int64_t c = scheduler.Submit(Request(testing::TokenIds(8, 3), 3, 0.0, 5), record);  // waits for a slot
  for (int i = 0; i < 3; ++i) scheduler.Step();
  EXPECT_TRUE(scheduler.Cancel(a));
  EXPECT_FALSE(scheduler.Cancel(a));
  scheduler.Run();
  EXPECT_EQ(out[a].finish, FinishReason::kCancelled);
  EXPECT_LT(out[a].tokens.size(), 50u);
  EXPECT_EQ(out[b].finish, FinishReason::kLength);
  EXPECT_EQ(out[c].finish, FinishReason::kLength);
  EXPECT_EQ(out[c].tokens.size(), 5u);
}

// Admission by memory: a request whose KV can never fit the pool is refused
// at once, naming the flag that lets it run; one that fits only alone waits
// for the running one and then gives the tokens it gives with no limit.
TEST_F(SchedulerTest, AdmissionCountsKvAgainstThePools) {
  const KvSize size = SequenceState::Size(model_.config(), model_.numerics());
  const int64_t one = size.TotalBytes(8 + 6);  // prompt 8 + max_tokens 6
  SchedulerOptions tight;
  tight.max_sequences = 4;
  tight.kv_ram_pool = one + one / 2;  // one such request at a time
  const std::vector<GenerationRequest> requests = {Request(testing::TokenIds(8, 1), 1, 0.0, 6),
                                                   Request(testing::TokenIds(8, 2), 2, 0.8, 6),
                                                   Request(testing::TokenIds(8, 3), 3, 0.0, 6)};
  SchedulerOptions roomy;
  roomy.max_sequences = 4;
  ExpectSameOutcomes(RunAll(requests, roomy), RunAll(requests, tight));

  Scheduler scheduler(model_, nullptr, tight);
  scheduler.Submit(Request(testing::TokenIds(8, 1), 1, 0.0, 6), nullptr);
  scheduler.Submit(Request(testing::TokenIds(8, 2), 2, 0.0, 6), nullptr);
  scheduler.Step();
  EXPECT_EQ(scheduler.stats().active, 1);
  EXPECT_EQ(scheduler.stats().queued, 1);
  EXPECT_EQ(scheduler.stats().kv_reserved_bytes, one);
  scheduler.Run();

  // Too long for the pool: refused before any work, pointing at --kv-dir.
  const std::string error = testing::ErrorOf([&] { scheduler.Submit(Request(testing::TokenIds(8, 4), 4, 0.0, 4000), nullptr); });
  EXPECT_NE(error.find("of KV in RAM for 4008 tokens (prompt 8 + max_tokens 4000)"), std::string::npos) << error;
  EXPECT_NE(error.find("--kv-dir"), std::string::npos) << error;
  EXPECT_TRUE(scheduler.Idle());
}

// Sixteen requests under a pool that holds four: never more than four run,
// and the KV the states really hold stays within the pool at every step.
TEST_F(SchedulerTest, SixteenSequencesStayWithinTheKvPool) {
  const KvSize size = SequenceState::Size(model_.config(), model_.numerics());
  const int64_t prompt = testing::SizeUnlessSanitized(600, 200);
  const int64_t one = size.TotalBytes(prompt + 20);
  SchedulerOptions options;
  options.max_sequences = 16;
  options.kv_ram_pool = 4 * one + one / 2;
  Scheduler scheduler(model_, nullptr, options);
  for (int i = 0; i < 16; ++i) scheduler.Submit(Request(testing::TokenIds(prompt, i), i, 0.0, 20), nullptr);
  int64_t most_active = 0, most_ram = 0;
  while (scheduler.Step()) {
    const Scheduler::Stats stats = scheduler.stats();
    most_active = std::max(most_active, stats.active);
    most_ram = std::max(most_ram, stats.kv_ram_bytes);
    EXPECT_LE(stats.kv_ram_bytes, stats.kv_reserved_bytes);
  }
  EXPECT_EQ(most_active, 4);
  EXPECT_LE(most_ram, options.kv_ram_pool);
  EXPECT_TRUE(scheduler.Idle());
}

TEST_F(SchedulerTest, SpilledRowsCountAgainstTheDiskPool) {
  testing::TempDir dir;
  SchedulerOptions options;
  options.kv.spill_dir = dir.path();
  options.kv.ram_budget = 0;
  const KvSize size = SequenceState::Size(model_.config(), model_.numerics(), options.kv);
  options.kv_ram_pool = size.RamBytes(1000);   // the rows that never spill fit ...
  options.kv_disk_pool = size.SpillableBytes(100);  // ... the spilled ones only for short requests
  Scheduler scheduler(model_, nullptr, options);
  const std::string error = testing::ErrorOf([&] { scheduler.Submit(Request(testing::TokenIds(8, 1), 1, 0.0, 500), nullptr); });
  EXPECT_NE(error.find("of spilled KV"), std::string::npos) << error;
  EXPECT_NE(error.find("free in --kv-dir"), std::string::npos) << error;
  Outcome out;
  scheduler.Submit(Request(testing::TokenIds(8, 1), 1, 0.0, 20), [&](const GenerationUpdate& u) {
    for (const Sampled& s : u.tokens) out.tokens.push_back(s.token);
    if (u.finish != FinishReason::kNone) out.error = u.error;
  });
  scheduler.Run();
  EXPECT_EQ(out.error, "");
  EXPECT_FALSE(out.tokens.empty());
}

TEST_F(SchedulerTest, TheContextSizeBoundsPromptAndOutput) {
  SchedulerOptions options;
  options.context_tokens = 12;
  Scheduler scheduler(model_, nullptr, options);
  EXPECT_NE(testing::ErrorOf([&] { scheduler.Submit(Request(testing::TokenIds(12, 1), 1, 0.0, 4), nullptr); })
                .find("the context is 12 (--ctx-size)"),
            std::string::npos);
  Outcome out;
  scheduler.Submit(Request(testing::TokenIds(8, 1), 1, 0.0, 50), [&](const GenerationUpdate& u) {
    for (const Sampled& s : u.tokens) out.tokens.push_back(s.token);
    if (u.finish != FinishReason::kNone) out.finish = u.finish;
  });
  scheduler.Run();
  EXPECT_EQ(out.finish, FinishReason::kLength);
  EXPECT_EQ(out.tokens.size(), 4u);  // 8 + 4 = the context
}

// Routed experts that fail on demand, like a read error from a paged shard.
class FailingExperts : public ExpertSource {
 public:
  explicit FailingExperts(const Checkpoint& checkpoint) : weights_(checkpoint), mapped_(weights_) {}
  ExpertHandle Acquire(int64_t block, int32_t expert) override {
    if (fail_) throw std::runtime_error("injected expert read error");
    return mapped_.Acquire(block, expert);
  }
  bool fail_ = false;

 private:
  ModelWeights weights_;
  MappedExperts mapped_;
};

TEST_F(SchedulerTest, AFailedForwardEndsItsRequestsWithAnErrorAndOthersGoOn) {
  FailingExperts experts(checkpoint_);
  const Model model(checkpoint_, Numerics::kDefault, &experts);
  const auto expected = RunAll({Request(testing::TokenIds(20, 5), 9, 0.0, 4)}, SchedulerOptions{}, &model);

  Scheduler scheduler(model, nullptr, SchedulerOptions{});
  Outcome failed, later;
  const auto into = [](Outcome& o) {
    return [&o](const GenerationUpdate& u) {
      for (const Sampled& s : u.tokens) o.tokens.push_back(s.token);
      if (u.finish != FinishReason::kNone) {
        o.finish = u.finish;
        o.error = u.error;
      }
    };
  };
  scheduler.Submit(Request(testing::TokenIds(20, 6), 9, 0.0, 4), into(failed));
  scheduler.Step();  // the prompt
  experts.fail_ = true;
  scheduler.Step();  // a decode step fails half way
  experts.fail_ = false;
  scheduler.Run();
  EXPECT_EQ(failed.finish, FinishReason::kError);
  EXPECT_NE(failed.error.find("injected expert read error"), std::string::npos) << failed.error;
  EXPECT_EQ(failed.tokens.size(), 1u);
  // The scheduler goes on with new work, computed as if nothing happened.
  scheduler.Submit(Request(testing::TokenIds(20, 5), 9, 0.0, 4), into(later));
  scheduler.Run();
  EXPECT_EQ(later.finish, FinishReason::kLength);
  EXPECT_EQ(later.tokens, expected[0].tokens);
}

TEST_F(SchedulerTest, AStateFromAFailedForwardIsRefused) {
  FailingExperts experts(checkpoint_);
  const Model model(checkpoint_, Numerics::kDefault, &experts);
  SequenceState state(model.config(), model.numerics());
  std::vector<float> logits(model.config().vocab_size);
  experts.fail_ = true;
  EXPECT_THROW(model.Forward({{5, 0, &state}, {6, 1, &state}}, {1}, logits.data()), std::runtime_error);
  experts.fail_ = false;
  EXPECT_NE(state.failure().find("unusable"), std::string::npos);
  EXPECT_NE(testing::ErrorOf([&] { model.Forward({{5, 0, &state}}, {0}, logits.data()); }).find("unusable"),
            std::string::npos);
}

}  // namespace
}  // namespace dsv4
