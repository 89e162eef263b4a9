#include "loader/process_memory.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace dsv4 {
namespace {

// Above the 32 MiB up to which glibc by default moves its mmap threshold.
constexpr int64_t kBlock = int64_t{64} << 20;

// Allocates and touches kBlock bytes, frees them, and returns how much of
// them the process still holds.
int64_t RssKeptAfterFree() {
  const int64_t before = ProcessStatusBytes("VmRSS");
  void* volatile block = std::malloc(kBlock);
  std::memset(block, 1, kBlock);
  std::free(block);
  return ProcessStatusBytes("VmRSS") - before;
}

// A sanitizer's allocator ignores mallopt and malloc_trim.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

TEST(ProcessMemory, FreedMemoryStaysUntilReleased) {
  if (!kGlibcMalloc) GTEST_SKIP() << "the sanitizer's allocator ignores mallopt";
  // glibc's default: a block this large is its own mapping, gone at free.
  EXPECT_LT(RssKeptAfterFree(), kBlock / 4);
  RetainFreedMemory();
  EXPECT_GT(RssKeptAfterFree(), kBlock * 3 / 4);
  // The next allocation reuses it: no growth.
  EXPECT_LT(RssKeptAfterFree(), kBlock / 4);
  const int64_t before = ProcessStatusBytes("VmRSS");
  ReleaseFreedMemory();
  EXPECT_LT(ProcessStatusBytes("VmRSS"), before - kBlock * 3 / 4);
}

}  // namespace
}  // namespace dsv4
