// ReadMemoryLimits on fake /proc and /sys trees: MemAvailable alone, cgroup
// v2 and v1 limits of the process's cgroup or an ancestor, a container whose
// cgroup is the mount itself, and "no limit" values.
#include "loader/memory_limits.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

class MemoryLimitsTest : public ::testing::Test {
 protected:
  void Write(const std::string& relative, const std::string& text) {
    const std::filesystem::path path = std::filesystem::path(root_.path()) / relative;
    std::filesystem::create_directories(path.parent_path());
    testing::WriteFile(path.string(), text);
  }
  // MemTotal 16 GiB, MemAvailable `available_mib`.
  void Meminfo(int64_t available_mib) {
    Write("proc/meminfo", "MemTotal:       16777216 kB\nMemFree:         1000 kB\nMemAvailable:   " +
                              std::to_string(available_mib * 1024) + " kB\n");
  }
  // A process in cgroup v2 `path` ("/a/b"), under a unified hierarchy with memory.
  void InV2Cgroup(const std::string& path) {
    Write("proc/self/cgroup", "0::" + path + "\n");
    Write("sys/fs/cgroup/cgroup.controllers", "cpu memory pids\n");
  }
  // memory.max of the v2 cgroup `dir` (relative to the hierarchy) and, if
  // given, the anonymous memory its memory.stat shows.
  void V2Limit(const std::string& dir, const std::string& max, int64_t anon_mib = -1) {
    const std::string base = "sys/fs/cgroup/" + (dir.empty() ? "" : dir + "/");
    Write(base + "memory.max", max + "\n");
    if (anon_mib >= 0) Write(base + "memory.stat", "anon " + std::to_string(anon_mib * kMiB) + "\nfile 900\n");
  }
  static std::string MiB(int64_t n) { return std::to_string(n * kMiB); }
  MemoryLimits Read() const { return ReadMemoryLimits(root_.path()); }
  std::string Path(const std::string& relative) const { return root_.path() + "/" + relative; }

  testing::TempDir root_;
};

TEST_F(MemoryLimitsTest, MemAvailableAloneWhenNoCgroupLimits) {
  Meminfo(8192);
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.mem_total, 16 * 1024 * kMiB);
  EXPECT_EQ(limits.available, 8192 * kMiB);
  EXPECT_EQ(limits.available_source, "MemAvailable");
  EXPECT_EQ(limits.cgroup_limit, -1);
}

TEST_F(MemoryLimitsTest, CgroupV2LimitLessItsAnonymousMemory) {
  Meminfo(8192);
  InV2Cgroup("/user.slice/app.scope");
  V2Limit("user.slice", "max");
  V2Limit("user.slice/app.scope", MiB(1536), 100);
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.cgroup_limit, 1536 * kMiB);
  EXPECT_EQ(limits.cgroup_unreclaimable, 100 * kMiB);
  EXPECT_EQ(limits.available, 1436 * kMiB);  // page cache (file) is reclaimable
  EXPECT_EQ(limits.available_source, Path("sys/fs/cgroup/user.slice/app.scope/memory.max"));
}

TEST_F(MemoryLimitsTest, AnAncestorsTighterLimitWins) {
  Meminfo(8192);
  InV2Cgroup("/a/b");
  V2Limit("a", MiB(1024), 300);
  V2Limit("a/b", MiB(4096), 10);
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.available, 724 * kMiB);
  EXPECT_EQ(limits.available_source, Path("sys/fs/cgroup/a/memory.max"));
}

TEST_F(MemoryLimitsTest, CgroupV1LimitAndItsNoLimitValue) {
  Meminfo(8192);
  Write("proc/self/cgroup", "9:pids:/\n4:memory:/docker/abc\n1:cpu,cpuacct:/\n");
  Write("sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  Write("sys/fs/cgroup/memory/docker/memory.limit_in_bytes", "9223372036854771712\n");
  Write("sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", MiB(2048) + "\n");
  Write("sys/fs/cgroup/memory/docker/abc/memory.stat", "cache 5\nrss 7\ntotal_cache 9\ntotal_rss " + MiB(48) + "\n");
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.cgroup_limit, 2048 * kMiB);
  EXPECT_EQ(limits.available, 2000 * kMiB);
}

TEST_F(MemoryLimitsTest, AContainerSeesItsLimitAtTheMount) {
  // Inside a container the cgroup path names the host's hierarchy, which
  // the container's mount does not show: the mount's own files count.
  Meminfo(8192);
  InV2Cgroup("/../../kubepods/pod1/c2");
  V2Limit("", MiB(512));
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.available, 512 * kMiB);
  EXPECT_EQ(limits.available_source, Path("sys/fs/cgroup/memory.max"));
}

TEST_F(MemoryLimitsTest, MemAvailableWinsWhenLess) {
  Meminfo(700);
  InV2Cgroup("/app");
  V2Limit("app", MiB(4096));
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.cgroup_limit, 4096 * kMiB);
  EXPECT_EQ(limits.available, 700 * kMiB);
  EXPECT_EQ(limits.available_source, "MemAvailable");
}

TEST_F(MemoryLimitsTest, NothingKnownIsMinusOne) {
  const MemoryLimits limits = Read();
  EXPECT_EQ(limits.available, -1);
  EXPECT_EQ(limits.mem_available, -1);
}

TEST(MemoryLimitsOfThisMachine, AreReadable) {
  const MemoryLimits limits = ReadMemoryLimits();
  EXPECT_GT(limits.available, 0);
  EXPECT_FALSE(limits.available_source.empty());
}

}  // namespace
}  // namespace dsv4
