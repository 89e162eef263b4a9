// A full disk (simulated by a file-size limit, which fails writes the same way
// and needs no privileges) ends a run with one clear line and exit status 1,
// never a signal, and leaves what was already on disk intact. The batch output's
// case is in batch_cli_test.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using testing::RunCliWithFileSizeLimit;
using testing::ShellQuote;

std::string Model() { return ShellQuote(testing::DataPath("tiny-dsv4/checkpoint")); }

// 700 token ids: long enough for whole 64-row pages of compressed KV rows.
std::string LongPrompt() {
  std::string ids;
  for (int i = 0; i < 700; ++i) ids += (i ? "," : "") + std::to_string(3 + i % 1000);
  return ids;
}

std::string LastLine(const std::string& text) {
  const size_t end = text.size() - (!text.empty() && text.back() == '\n');
  const size_t begin = text.rfind('\n', end - 1);
  return text.substr(begin == std::string::npos ? 0 : begin + 1, end - (begin == std::string::npos ? 0 : begin + 1));
}

TEST(FullDisk, KvSpillThatCannotBeWrittenIsAClearError) {
  testing::TempDir dir;
  const auto result = RunCliWithFileSizeLimit(
      20000, "run -m " + Model() + " --prompt-ids " + LongPrompt() + " -n 2 --kv-dir " + ShellQuote(dir.path()) +
                 " --kv-ram-budget 0");
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_EQ(LastLine(result.err),
            "dsv4 run: error: --kv-dir " + dir.path() + ": writing the KV spill file failed (File too large)");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));  // the spill file is gone with the process
}

TEST(FullDisk, ASessionThatDoesNotFitKeepsTheSavedOneAndLeavesNoTempFile) {
  testing::TempDir dir;
  const std::string session = dir.File("chat.session");
  const auto first = testing::RunCli("run -m " + Model() + " --prompt-ids 5,6,7 -n 1 --save-session " +
                                     ShellQuote(session));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string saved = testing::ReadFile(session);
  const auto full = RunCliWithFileSizeLimit(static_cast<int64_t>(saved.size()) + 1000,
                                            "run -m " + Model() + " --prompt-ids " + LongPrompt() +
                                                " -n 1 --save-session " + ShellQuote(session));
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_EQ(LastLine(full.err),
            "dsv4 run: error: " + session + ": cannot save the session: writing failed (File too large)");
  EXPECT_EQ(testing::ReadFile(session), saved);
  int files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++files;
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace dsv4
