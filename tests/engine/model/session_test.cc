// Sessions: save at position P, restore, continue == uninterrupted, bit for
// bit; damaged files and files of another model are refused clearly.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/runtime/sequence_runner.h"
#include "engine/model/session_file.h"
#include "loader/error.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Fixture {
  testing::Golden golden;
  Checkpoint checkpoint{golden.checkpoint_dir()};
  Model model{checkpoint, Numerics::kDefault};
  uint64_t identity = ModelIdentity(checkpoint);
  const testing::GoldenSequence& s = golden.sequences()[1];  // window_wrap: 45 + 8 tokens
};

std::vector<float> Continue(SequenceRunner& runner, const std::vector<int32_t>& tokens) {
  std::vector<float> logits;
  for (int32_t t : tokens) {
    const std::vector<float> row = runner.Feed({t}, false);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  return logits;
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Session, RestoreThenContinueIsBitIdentical) {
  Fixture f;
  testing::TempDir dir;
  for (int64_t split : {1, 20, 44}) {
    const std::vector<int32_t> first(f.s.prompt.begin(), f.s.prompt.begin() + split);
    const std::vector<int32_t> rest(f.s.prompt.begin() + split, f.s.prompt.end());
    SequenceRunner uninterrupted(f.model, 16);
    uninterrupted.Feed(first, false);
    uninterrupted.Feed(rest, false);
    const std::vector<float> expected = Continue(uninterrupted, f.s.decode_tokens);

    SequenceRunner before(f.model, 16);
    before.Feed(first, false);
    before.Save(dir.File("s.dsv4session"), f.identity);
    SequenceRunner after(f.model, 16);
    after.Load(dir.File("s.dsv4session"), f.identity);
    EXPECT_EQ(after.tokens(), first);
    EXPECT_TRUE(BitIdentical(after.last_logits(), before.last_logits()));
    after.Feed(rest, false);
    EXPECT_TRUE(BitIdentical(Continue(after, f.s.decode_tokens), expected)) << "split at " << split;
  }
}

TEST(Session, SpilledRowsAreSavedAndRestored) {
  Fixture f;
  testing::TempDir dir;
  KvOptions spill;
  spill.spill_dir = dir.File("kv");
  spill.ram_budget = 0;
  // 300 tokens of the long sequence fill more than one page of ratio-4 rows.
  const testing::GoldenSequence& s = f.golden.sequences()[2];
  const std::vector<int32_t> prompt(s.prompt.begin(), s.prompt.begin() + 300);
  const std::vector<int32_t> decode(s.decode_tokens.begin(), s.decode_tokens.begin() + 8);
  SequenceRunner uninterrupted(f.model, 0);
  uninterrupted.Feed(prompt, false);
  const std::vector<float> expected = Continue(uninterrupted, decode);

  SequenceRunner before(f.model, 0, spill);
  before.Feed(prompt, false);
  EXPECT_GT(before.state().kv_spilled_bytes(), 0);
  before.Save(dir.File("s.dsv4session"), f.identity);
  SequenceRunner after(f.model, 0, spill);
  after.Load(dir.File("s.dsv4session"), f.identity);
  EXPECT_GT(after.state().kv_spilled_bytes(), 0);
  EXPECT_TRUE(BitIdentical(Continue(after, decode), expected));
}

void ExpectLoadError(const Fixture& f, const std::string& path, uint64_t identity, Numerics numerics,
                     const std::string& message) {
  Model model(f.checkpoint, numerics);
  SequenceRunner runner(model, 0);
  try {
    runner.Load(path, identity);
    FAIL() << "expected an error containing " << message;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(Session, DamagedOrForeignFilesAreRefused) {
  Fixture f;
  testing::TempDir dir;
  SequenceRunner runner(f.model, 0);
  runner.Feed(f.s.prompt, false);
  const std::string good = dir.File("good.dsv4session");
  runner.Save(good, f.identity);
  const std::string bytes = testing::ReadFile(good);

  testing::WriteFile(dir.File("truncated"), bytes.substr(0, bytes.size() / 2));
  ExpectLoadError(f, dir.File("truncated"), f.identity, Numerics::kDefault, "truncated");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  testing::WriteFile(dir.File("flipped"), flipped);
  ExpectLoadError(f, dir.File("flipped"), f.identity, Numerics::kDefault, "checksum");
  testing::WriteFile(dir.File("garbage"), "not a session at all");
  ExpectLoadError(f, dir.File("garbage"), f.identity, Numerics::kDefault, "not a dsv4 session");
  ExpectLoadError(f, good, f.identity ^ 1, Numerics::kDefault, "another model");
  ExpectLoadError(f, good, f.identity, Numerics::kSmooth, "--numerics");
  ExpectLoadError(f, dir.File("missing"), f.identity, Numerics::kDefault, "cannot open");
}

TEST(Session, ModelIdentityFollowsConfigAndTensors) {
  Fixture f;
  testing::TempDir dir;
  for (const auto& entry : std::filesystem::directory_iterator(f.golden.checkpoint_dir())) {
    std::filesystem::copy(entry.path(), dir.File(entry.path().filename().string()));
  }
  EXPECT_EQ(ModelIdentity(Checkpoint(dir.path())), f.identity);
  std::string config = testing::ReadFile(dir.File("config.json"));
  config.replace(config.find("\"rms_norm_eps\": 1e-06"), 21, "\"rms_norm_eps\": 2e-06");
  testing::WriteFile(dir.File("config.json"), config);
  EXPECT_NE(ModelIdentity(Checkpoint(dir.path())), f.identity);
}

TEST(Session, PrefixSearchFindsTheLongestSavedPrefix) {
  Fixture f;
  testing::TempDir dir;
  for (int64_t n : {5, 12, 30}) {
    SequenceRunner runner(f.model, 0);
    const std::vector<int32_t> prefix(f.s.prompt.begin(), f.s.prompt.begin() + n);
    runner.Feed(prefix, false);
    runner.Save(PrefixSessionPath(dir.path(), prefix), f.identity);
  }
  int64_t matched = 0;
  std::vector<int32_t> query(f.s.prompt.begin(), f.s.prompt.begin() + 20);
  EXPECT_NE(FindPrefixSession(dir.path(), query, f.identity, Numerics::kDefault, &matched), "");
  EXPECT_EQ(matched, 12);
  // A damaged best match is skipped for the next best, never loaded.
  const std::string twelve = PrefixSessionPath(dir.path(), {f.s.prompt.begin(), f.s.prompt.begin() + 12});
  std::string bytes = testing::ReadFile(twelve);
  bytes[bytes.size() / 2] ^= 0x40;
  testing::WriteFile(twelve, bytes);
  EXPECT_FALSE(SessionChecksumHolds(twelve));
  EXPECT_NE(FindPrefixSession(dir.path(), query, f.identity, Numerics::kDefault, &matched), twelve);
  EXPECT_EQ(matched, 5);
  query[3] ^= 1;
  EXPECT_EQ(FindPrefixSession(dir.path(), query, f.identity, Numerics::kDefault, &matched), "");
  EXPECT_EQ(matched, 0);
}

TEST(Session, SavesLeaveNoTemporaryFiles) {
  Fixture f;
  testing::TempDir dir;
  SequenceRunner runner(f.model, 0);
  runner.Feed({f.s.prompt.begin(), f.s.prompt.begin() + 4}, false);
  const std::string path = dir.File("s.dsv4session");
  runner.Save(path, f.identity);
  runner.Save(path, f.identity);  // over an existing one
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) files += entry.path() == path ? 1 : 100;
  EXPECT_EQ(files, 1);
  EXPECT_TRUE(SessionChecksumHolds(path));
}

}  // namespace
}  // namespace dsv4
