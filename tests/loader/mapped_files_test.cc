// A shard truncated after it was mapped: the next read of a lost page raises
// SIGBUS, and the handler ends the process with one line naming the file.
#include "loader/mapped_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "loader/safetensors.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

TEST(MappedFiles, ATruncatedShardIsAnErrorNamingItNotABareSignal) {
  testing::TempDir dir;
  const std::string shard = dir.File("model-00001-of-00003.safetensors");
  std::filesystem::copy_file(testing::DataPath("tiny-dsv4/checkpoint/model-00001-of-00003.safetensors"), shard);
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(err[1], STDERR_FILENO);
    InstallMappedFileFaultHandler("dsv4 test");
    SafetensorsFile file(shard);
    const uint8_t* last = nullptr;  // the tensor data farthest into the file: past the first page
    for (const auto& [name, view] : file.tensors()) last = std::max(last, static_cast<const uint8_t*>(view.data));
    std::filesystem::resize_file(shard, 8);  // every page after the first is gone
    volatile uint8_t sink = *last;
    (void)sink;
    _exit(0);  // not reached
  }
  close(err[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = read(err[0], buffer, sizeof buffer)) > 0;) message.append(buffer, n);
  close(err[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_EQ(message, "dsv4 test: error: " + shard +
                         ": the file shrank while it was mapped (truncated or replaced by another process?); "
                         "restore it and run again\n");
}

}  // namespace
}  // namespace dsv4
