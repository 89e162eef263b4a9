// How much memory this process may use: the kernel's MemAvailable, and the
// limits of the memory cgroups it runs in (v2 memory.max, v1
// memory.limit_in_bytes, of its own cgroup and every ancestor), since a
// container's limit, not the host's free RAM, is what the OOM killer
// enforces. Read through a root directory so tests can give fake files.
#pragma once

#include <cstdint>
#include <string>

namespace dsv4 {

struct MemoryLimits {
  int64_t mem_total = -1;      // MemTotal (-1: unknown)
  int64_t mem_available = -1;  // MemAvailable (-1: unknown)
  // The tightest cgroup limit on this process (-1: none), where it is set,
  // and what the cgroup holds that cannot be reclaimed (anonymous memory).
  int64_t cgroup_limit = -1;
  std::string cgroup_file;
  int64_t cgroup_unreclaimable = 0;
  // What a new allocation may take: MemAvailable, or the cgroup's limit less
  // its unreclaimable memory where that is less. -1 when neither is known.
  int64_t available = -1;
  // "MemAvailable" or the cgroup file that bounds `available`.
  std::string available_source;
};

// `root` is "/" on a real system.
MemoryLimits ReadMemoryLimits(const std::string& root = "/");

}  // namespace dsv4
