// Speculative rows rolled back: a state that ran draft rows and rolled them
// back equals, in every byte of its session file and in what it computes
// next, the state that only ever saw the accepted tokens. Checked where a
// row's writes are hardest to undo: window-ring wraps, ratio-4 windows ending
// (the overlapping compressor moves its halves), the ratio-128 window and
// the first full page of compressed rows, spilled to disk.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>

#include "engine/model/session_file.h"
#include "engine/runtime/sequence_runner.h"
#include "loader/error.h"
#include "simd/matmul.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

constexpr int64_t kFollowing = 3;  // accepted tokens fed after the rollback

struct Fixture {
  testing::Golden golden;
  Checkpoint checkpoint{golden.checkpoint_dir()};
  Model model{checkpoint, Numerics::kDefault};
  uint64_t identity = ModelIdentity(checkpoint);
  const std::vector<int32_t>& tokens = golden.sequences()[2].prompt;
};

// What a state computes and holds after the first `length` tokens and
// kFollowing more, fed one at a time.
struct Outcome {
  std::vector<float> logits;  // of the following tokens
  std::string session;        // the file's bytes
};

Outcome Follow(const Fixture& f, SequenceState& state, int64_t length, testing::TempDir& dir) {
  Outcome out;
  const int64_t vocab = f.model.config().vocab_size;
  std::vector<float> row(vocab);
  for (int64_t p = length; p < length + kFollowing; ++p) {
    f.model.Forward({{f.tokens[p], p, &state}}, {0}, row.data());
    out.logits.insert(out.logits.end(), row.begin(), row.end());
  }
  SessionContents contents;
  contents.tokens.assign(f.tokens.begin(), f.tokens.begin() + length + kFollowing);
  const std::string path = dir.File("state.dsv4session");
  SaveSession(path, state, contents, f.identity);
  out.session = testing::ReadFile(path);
  return out;
}

class SpeculativeRollback : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { SetMatMulKernels(MatMulImpl::kSimd); }
  void TearDown() override { SetMatMulKernels(MatMulImpl::kReference); }
};

TEST_P(SpeculativeRollback, EqualsTheStateThatNeverSawTheDrafts) {
  const bool spill = GetParam();
  Fixture f;
  testing::TempDir dir;
  KvOptions kv;
  if (spill) {  // every full page goes to disk at once
    kv.spill_dir = dir.File("kv");
    kv.ram_budget = 0;
  }
  const ModelConfig& c = f.model.config();
  ASSERT_EQ(c.sliding_window, 32);
  const int64_t vocab = c.vocab_size;
  // Ring wraps at 32 and 128, ratio-4 windows end at 4k+3, the ratio-128
  // window at 127, and the 64th ratio-4 row (a full page) comes at 255.
  const std::vector<int64_t> starts = testing::kSanitized ? std::vector<int64_t>{30, 125, 253}
                                                          : std::vector<int64_t>{29, 30, 31, 32, 124, 125, 126, 127,
                                                                                 252, 253, 254, 255};
  ASSERT_GT(static_cast<int64_t>(f.tokens.size()), 255 + SequenceState::kMaxSpeculativeRows + kFollowing);
  // One running state walks through the starts; each case starts from a copy.
  SequenceState walker(c, f.model.numerics(), kv);
  const auto clone = [&](int64_t length) {
    auto state = std::make_unique<SequenceState>(c, f.model.numerics(), kv);
    state->CopyFrom(walker);
    for (int64_t p = walker.length(); p < length; ++p) f.model.Forward({{f.tokens[p], p, state.get()}}, {}, nullptr);
    return state;
  };
  std::map<int64_t, Outcome> plain;  // by accepted length
  for (int64_t start : starts) {
    std::vector<TokenRow> prefix;
    for (int64_t p = walker.length(); p < start; ++p) prefix.push_back({f.tokens[p], p, &walker});
    if (!prefix.empty()) f.model.Forward(prefix, {}, nullptr);
    for (int64_t rows : {2, 4}) {
      for (int64_t keep = start; keep <= start + rows; ++keep) {
        if (!plain.count(keep)) plain[keep] = Follow(f, *clone(keep), keep, dir);
        const std::unique_ptr<SequenceState> state = clone(start);
        // The accepted drafts are the true tokens; the rest are wrong ones.
        state->Mark(rows);
        std::vector<TokenRow> drafts;
        for (int64_t p = start; p < start + rows; ++p) {
          drafts.push_back({p < keep ? f.tokens[p] : static_cast<int32_t>((f.tokens[p] + 7) % vocab), p, state.get()});
        }
        std::vector<float> ignored(vocab);
        f.model.Forward(drafts, {0}, ignored.data());
        state->RollBack(keep);
        ASSERT_EQ(state->length(), keep);
        const Outcome rolled = Follow(f, *state, keep, dir);
        const Outcome& expected = plain[keep];
        SCOPED_TRACE("start " + std::to_string(start) + ", " + std::to_string(rows) + " rows, keep " +
                     std::to_string(keep));
        ASSERT_EQ(rolled.logits.size(), expected.logits.size());
        EXPECT_EQ(std::memcmp(rolled.logits.data(), expected.logits.data(), rolled.logits.size() * sizeof(float)), 0);
        EXPECT_TRUE(rolled.session == expected.session);
        // The 64th ratio-4 row fills a page at position 255, which spills at once.
        if (spill && keep + kFollowing >= 256) {
          EXPECT_GT(state->kv_spilled_bytes(), 0);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KvInRamOrSpilled, SpeculativeRollback, ::testing::Bool());

TEST(SpeculativeRollbackLimits, RefusesWhatTheMarkDoesNotCover) {
  Fixture f;
  SequenceState state(f.model.config(), f.model.numerics());
  EXPECT_THROW(state.Mark(0), Error);
  EXPECT_THROW(state.Mark(SequenceState::kMaxSpeculativeRows + 1), Error);
  EXPECT_THROW(state.RollBack(0), Error);  // nothing marked
  std::vector<TokenRow> rows;
  for (int64_t p = 0; p < 6; ++p) rows.push_back({f.tokens[p], p, &state});
  f.model.Forward({rows.begin(), rows.begin() + 3}, {}, nullptr);
  state.Mark(2);
  f.model.Forward({rows.begin() + 3, rows.end()}, {}, nullptr);  // 3 rows past a mark of 2
  EXPECT_THROW(state.RollBack(4), Error);
}

}  // namespace
}  // namespace dsv4
