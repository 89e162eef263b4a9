#include "loader/memory_limits.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace dsv4 {
namespace fs = std::filesystem;
namespace {

// v1 reports "no limit" as the largest page-aligned int64; anything this
// large is no limit at all.
constexpr int64_t kNoLimit = int64_t{1} << 60;

// The first line of `path` as a byte count; -1 if absent, "max" or no limit.
int64_t ReadLimit(const fs::path& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return -1;
  try {
    const long long value = std::stoll(text);
    return value >= 0 && value < kNoLimit ? value : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

// The value of `key` in a "key value" file (memory.stat, in bytes), or -1.
int64_t ReadKey(const fs::path& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  long long value = 0;
  while (in >> k >> value) {
    if (k == key) return value;
  }
  return -1;
}

// /proc/meminfo fields are in KiB.
int64_t MeminfoBytes(const fs::path& path, const std::string& key) {
  std::ifstream in(path);
  std::string k, unit;
  long long kib = 0;
  while (in >> k >> kib >> unit) {
    if (k == key + ":") return kib * 1024;
  }
  return -1;
}

struct CgroupPaths {
  std::string v1_memory;  // path of the v1 memory hierarchy, if any
  std::string v2;         // path in the unified hierarchy, if any
};

CgroupPaths ReadCgroupPaths(const fs::path& file) {
  CgroupPaths paths;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (line.substr(0, a) == "0" && controllers.empty()) {
      paths.v2 = path;
      continue;
    }
    std::stringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == "memory") paths.v1_memory = path;
    }
  }
  return paths;
}

// The cgroup directory of `path` under `mount` and each ancestor up to the
// mount itself. Inside a container the mount is often the container's own
// cgroup, so the path may not exist below it: the mount still counts.
std::vector<fs::path> CgroupLevels(const fs::path& mount, const std::string& path) {
  const fs::path top = mount.lexically_normal();
  const fs::path relative = fs::path(path).relative_path();
  fs::path dir = relative.empty() ? top : (top / relative).lexically_normal();
  // A path that leaves the mount (a host path seen from a container) has no level below it.
  if (dir.string().rfind(top.string(), 0) != 0) dir = top;
  std::vector<fs::path> levels;
  for (; dir.string().size() > top.string().size(); dir = dir.parent_path()) {
    if (fs::is_directory(dir)) levels.push_back(dir);
  }
  if (fs::is_directory(top)) levels.push_back(top);
  return levels;
}

// Applies the limit of one cgroup level to `limits`.
void ApplyLevel(MemoryLimits& limits, const fs::path& limit_file, const fs::path& stat_file,
                const std::string& anon_key) {
  const int64_t limit = ReadLimit(limit_file);
  if (limit < 0) return;
  const int64_t anon = std::max<int64_t>(0, ReadKey(stat_file, anon_key));
  const int64_t room = std::max<int64_t>(0, limit - anon);
  if (limits.cgroup_limit < 0 || room < limits.cgroup_limit - limits.cgroup_unreclaimable) {
    limits.cgroup_limit = limit;
    limits.cgroup_file = limit_file.string();
    limits.cgroup_unreclaimable = anon;
  }
  if (limits.available < 0 || room < limits.available) {
    limits.available = room;
    limits.available_source = limit_file.string();
  }
}

}  // namespace

MemoryLimits ReadMemoryLimits(const std::string& root) {
  const fs::path r(root);
  MemoryLimits limits;
  limits.mem_total = MeminfoBytes(r / "proc/meminfo", "MemTotal");
  limits.mem_available = MeminfoBytes(r / "proc/meminfo", "MemAvailable");
  limits.available = limits.mem_available;
  if (limits.available >= 0) limits.available_source = "MemAvailable";
  const CgroupPaths paths = ReadCgroupPaths(r / "proc/self/cgroup");
  std::error_code ec;
  if (!paths.v2.empty() && fs::exists(r / "sys/fs/cgroup/cgroup.controllers", ec)) {
    // Unified hierarchy mounted at /sys/fs/cgroup; memory.stat's "anon" is
    // hierarchical below the root.
    for (const fs::path& level : CgroupLevels(r / "sys/fs/cgroup", paths.v2)) {
      ApplyLevel(limits, level / "memory.max", level / "memory.stat", "anon");
    }
  }
  if (!paths.v1_memory.empty()) {
    for (const fs::path& level : CgroupLevels(r / "sys/fs/cgroup/memory", paths.v1_memory)) {
      ApplyLevel(limits, level / "memory.limit_in_bytes", level / "memory.stat", "total_rss");
    }
  }
  return limits;
}

}  // namespace dsv4
