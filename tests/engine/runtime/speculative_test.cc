// Speculative decoding in the scheduler on the tiny fixture: whatever the
// drafts (the MTP block's, or an oracle's that are right, wrong, or wrong on
// a schedule at ring wraps and compressor boundaries), every request emits
// the tokens it emits without drafts, greedy and sampled, and ends in the
// same state, byte for byte.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <vector>

#include "engine/model/session_file.h"
#include "engine/runtime/scheduler.h"
#include "simd/matmul.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kNone;
  Usage usage;
  std::string session;  // the final state's session bytes (with return_state)
};

class Speculative : public ::testing::Test {
 protected:
  void SetUp() override { SetMatMulKernels(MatMulImpl::kSimd); }
  void TearDown() override { SetMatMulKernels(MatMulImpl::kReference); }

  // Greedy and sampled requests, with penalties and a logit bias, long
  // enough to pass the ratio-128 window at position 127.
  std::vector<GenerationRequest> Requests(int64_t count, int64_t max_tokens) const {
    std::vector<GenerationRequest> requests;
    for (int64_t i = 0; i < count; ++i) {
      GenerationRequest r;
      r.prompt = testing::TokenIds(90 + 7 * i, static_cast<uint32_t>(i));
      r.sampling.seed = 500 + i;
      r.sampling.temperature = i % 2 == 0 ? 0.0 : 0.9;
      r.sampling.top_p = 0.95;
      r.sampling.presence_penalty = i % 3 == 1 ? 0.5 : 0.0;
      r.sampling.frequency_penalty = i % 3 == 2 ? 0.3 : 0.0;
      r.sampling.top_logprobs = 1;
      r.sampling.max_tokens = max_tokens;
      requests.push_back(std::move(r));
    }
    return requests;
  }

  std::vector<Outcome> Run(const std::vector<GenerationRequest>& requests, SchedulerOptions options,
                           Scheduler::Stats* stats = nullptr, bool return_state = false,
                           const std::vector<std::function<int32_t(const std::vector<int32_t>&)>>& drafters = {}) {
    Scheduler scheduler(model_, nullptr, options);
    std::vector<Outcome> outcomes(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      GenerationRequest r;
      r.prompt = requests[i].prompt;
      r.sampling = requests[i].sampling;
      r.return_state = return_state;
      if (!drafters.empty()) r.drafter = drafters[i];
      scheduler.Submit(std::move(r), [&, i](const GenerationUpdate& u) {
        for (const Sampled& s : u.tokens) {
          outcomes[i].tokens.push_back(s.token);
          outcomes[i].logprobs.push_back(s.logprob);
        }
        if (u.finish == FinishReason::kNone) return;
        outcomes[i].finish = u.finish;
        outcomes[i].usage = u.usage;
        if (u.final_state) {
          SessionContents contents;
          contents.tokens = u.all_tokens;
          contents.last_logits = u.final_logits;
          const std::string path = dir_.File("final.dsv4session");
          SaveSession(path, *u.final_state, contents, 1);
          outcomes[i].session = testing::ReadFile(path);
        }
      });
    }
    scheduler.Run();
    if (stats) *stats = scheduler.stats();
    return outcomes;
  }

  static void ExpectSame(const std::vector<Outcome>& a, const std::vector<Outcome>& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      SCOPED_TRACE(what + ", request " + std::to_string(i));
      EXPECT_EQ(a[i].tokens, b[i].tokens);
      EXPECT_EQ(a[i].logprobs, b[i].logprobs);
      EXPECT_EQ(a[i].finish, b[i].finish);
      EXPECT_EQ(a[i].usage.completion_tokens, b[i].usage.completion_tokens);
      EXPECT_TRUE(a[i].session == b[i].session) << "the final states differ";
    }
  }

  testing::Golden golden_;
  Checkpoint checkpoint_{golden_.checkpoint_dir()};
  Model model_{checkpoint_, Numerics::kDefault};
  testing::TempDir dir_;
};

// With k = 3 the MTP block is chained on its own output for the second and
// third drafts, and those rows are undone: the final states (the block's
// ring included, which a plain run leaves empty) equal those at k = 1 byte
// for byte.
TEST_F(Speculative, MtpDraftsChangeNoToken) {
  const auto requests = Requests(testing::SizeUnlessSanitized(6, 3), testing::SizeUnlessSanitized(60, 24));
  for (int64_t parallel : {1, 3}) {
    SchedulerOptions plain;
    plain.max_sequences = parallel;
    std::vector<Outcome> expected = Run(requests, plain);
    for (int64_t k : {1, 3}) {
      SchedulerOptions speculative = plain;
      speculative.speculative = true;
      speculative.draft_tokens = k;
      Scheduler::Stats stats;
      std::vector<Outcome> outcomes = Run(requests, speculative, &stats, /*return_state=*/true);
      if (k == 1) {
        for (size_t i = 0; i < expected.size(); ++i) expected[i].session = outcomes[i].session;
      }
      ExpectSame(outcomes, expected, "--parallel " + std::to_string(parallel) + ", k " + std::to_string(k));
      EXPECT_GT(stats.drafts, 0);
      EXPECT_GT(stats.mtp_rows, 0);
      std::printf("parallel %lld, k %lld: %lld MTP drafts, %lld accepted (random weights)\n",
                  static_cast<long long>(parallel), static_cast<long long>(k), static_cast<long long>(stats.drafts),
                  static_cast<long long>(stats.accepted_drafts));
    }
  }
}

// The draft after a prompt is the argmax of the MTP logits of the reference
// (golden A, fixture README's MTP protocol): the prompt is the golden one cut
// before position m + 1, a logit bias makes the first sampled token the
// golden prompt's token m, and the MTP row of position m - 1 (its final
// streams and that token) then predicts position m + 1.
TEST_F(Speculative, MtpDraftsAreTheArgmaxOfTheReferenceMtpLogits) {
  const int64_t vocab = model_.config().vocab_size;
  int checked = 0;
  for (const testing::GoldenSequence& g : golden_.sequences()) {
    if (!golden_.Has(g, "A.mtp_logits")) continue;
    const std::vector<float> reference = golden_.Floats(g, "A.mtp_logits");
    const int64_t n = g.prompt.size(), stored = reference.size() / vocab, first = n - 1 - stored;
    for (int64_t m = first + 1; m < n; m += std::max<int64_t>(1, (n - first) / 5)) {
      const float* row = reference.data() + (m - 1 - first) * vocab;
      std::vector<float> sorted(row, row + vocab);
      std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
      if (sorted[0] - sorted[1] < testing::kToleranceA.last_prompt_d) continue;  // a knife edge; not a test of wiring
      GenerationRequest r;
      r.prompt.assign(g.prompt.begin(), g.prompt.begin() + m);
      r.sampling.temperature = 0;
      r.sampling.seed = 1;
      r.sampling.max_tokens = 3;
      r.sampling.logit_bias = {{g.prompt[m], 100.0f}};
      std::vector<int32_t> sampled;
      std::vector<std::pair<int64_t, int32_t>> drafts;
      r.on_mtp_draft = [&](int64_t position, int32_t token) { drafts.emplace_back(position, token); };
      SchedulerOptions options;
      options.speculative = true;
      Scheduler scheduler(model_, nullptr, options);
      scheduler.Submit(std::move(r), [&](const GenerationUpdate& u) {
        for (const Sampled& t : u.tokens) sampled.push_back(t.token);
      });
      scheduler.Run();
      SCOPED_TRACE(g.name + ", m " + std::to_string(m));
      ASSERT_FALSE(sampled.empty());
      ASSERT_EQ(sampled[0], g.prompt[m]);
      ASSERT_FALSE(drafts.empty());
      EXPECT_EQ(drafts[0].first, m + 1);
      EXPECT_EQ(drafts[0].second, ArgMax(row, vocab));
      ++checked;
    }
  }
  EXPECT_GE(checked, 6);
}

// An oracle drafts the true next token except at the positions `wrong`
// picks: all right, all wrong, or wrong where a row's writes are hardest to
// undo (ring wraps at multiples of 32, ratio-4 windows ending at 4k+3, the
// ratio-128 window at 127 and 255).
TEST_F(Speculative, OracleDraftsAcceptAllSomeOrNone) {
  const int64_t vocab = model_.config().vocab_size;
  const auto requests = Requests(testing::SizeUnlessSanitized(4, 2), testing::SizeUnlessSanitized(180, 48));
  SchedulerOptions options;
  options.max_sequences = 2;
  KvOptions spilled;
  spilled.spill_dir = dir_.File("kv");
  spilled.ram_budget = 0;
  for (const KvOptions& kv : {KvOptions{}, spilled}) {
    options.kv = kv;
    options.draft_tokens = 1;
    const std::vector<Outcome> expected = Run(requests, options, nullptr, /*return_state=*/true);
    const std::map<std::string, std::function<bool(int64_t)>> schedules = {
        {"all right", [](int64_t) { return false; }},
        {"all wrong", [](int64_t) { return true; }},
        {"every third wrong", [](int64_t p) { return p % 3 == 0; }},
        {"wrong at boundaries",
         [](int64_t p) { return p % 32 == 0 || p % 32 == 1 || p % 4 == 3 || p % 128 == 127 || p % 128 == 0; }},
    };
    for (const auto& [name, wrong] : schedules) {
      // Sanitized builds chain 3 drafts only: one draft is the chain's first link.
      for (const int64_t k : testing::kSanitized ? std::vector<int64_t>{3} : std::vector<int64_t>{1, 3}) {
        options.draft_tokens = k;
        std::vector<std::function<int32_t(const std::vector<int32_t>&)>> drafters;
        for (size_t i = 0; i < requests.size(); ++i) {
          std::vector<int32_t> truth = requests[i].prompt;
          truth.insert(truth.end(), expected[i].tokens.begin(), expected[i].tokens.end());
          drafters.push_back([truth, wrong, vocab](const std::vector<int32_t>& tokens) {
            const int64_t p = static_cast<int64_t>(tokens.size());  // the drafted position
            if (p >= static_cast<int64_t>(truth.size())) return -1;
            return wrong(p) ? static_cast<int32_t>((truth[p] + 1) % vocab) : truth[p];
          });
        }
        Scheduler::Stats stats;
        ExpectSame(Run(requests, options, &stats, /*return_state=*/true, drafters), expected,
                   name + (kv.spill_dir.empty() ? "" : ", spilled") + ", k " + std::to_string(k));
        EXPECT_GT(stats.drafts, 0);
        if (name == "all right") {
          EXPECT_EQ(stats.accepted_drafts, stats.drafts);
        }
        if (name == "all wrong") {
          EXPECT_EQ(stats.accepted_drafts, 0);
        }
        if (name == "every third wrong") {
          EXPECT_GT(stats.accepted_drafts, 0);
          EXPECT_LT(stats.accepted_drafts, stats.drafts);
        }
        // Every token is fed once as before; a rejected draft costs one row more.
        int64_t completion = 0;
        for (const Outcome& o : expected) completion += o.usage.completion_tokens;
        EXPECT_EQ(stats.decode_rows, completion + stats.drafts - stats.accepted_drafts) << name;
      }
    }
  }
}

}  // namespace
}  // namespace dsv4
