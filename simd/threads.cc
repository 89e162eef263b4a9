#include "simd/threads.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace dsv4 {
namespace {

// -1 where sysfs does not say.
int ReadTopologyValue(int cpu, const char* field) {
  std::ifstream in("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/" + field);
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

// The CPUs the process may use, as they were on the first call: pinning
// later narrows the calling thread's own mask to one CPU.
const std::vector<int>& AllowedCpus() {
  static const std::vector<int> cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> allowed;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return allowed;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) allowed.push_back(cpu);
    }
    return allowed;
  }();
  return cpus;
}

// Allowed CPUs ordered so that the first PhysicalCores() entries sit on
// distinct physical cores.
std::vector<int> CpusSpreadOverCores() {
  std::vector<int> first, siblings;
  std::set<std::pair<int, int>> seen;
  for (const int cpu : AllowedCpus()) {
    const std::pair<int, int> core{ReadTopologyValue(cpu, "physical_package_id"), ReadTopologyValue(cpu, "core_id")};
    const bool unknown = core.second < 0;
    (unknown || seen.insert(core).second ? first : siblings).push_back(cpu);
  }
  first.insert(first.end(), siblings.begin(), siblings.end());
  return first;
}

}  // namespace

int PhysicalCores() {
  std::set<std::pair<int, int>> cores;
  int unknown = 0;
  for (const int cpu : AllowedCpus()) {
    const int core = ReadTopologyValue(cpu, "core_id");
    if (core < 0) {
      ++unknown;
    } else {
      cores.insert({ReadTopologyValue(cpu, "physical_package_id"), core});
    }
  }
  return std::max<int>(1, static_cast<int>(cores.size()) + unknown);
}

void SetThreadCount(int threads) {
  if (threads <= 0) {
    // OMP_NUM_THREADS, when set, is the user's default, as in every OpenMP program.
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env != nullptr ? std::atoi(env) : 0;
    if (threads <= 0) threads = PhysicalCores();
  }
  omp_set_num_threads(threads);
  if (std::getenv("OMP_PROC_BIND") != nullptr || std::getenv("OMP_PLACES") != nullptr) return;
  const std::vector<int> cpus = CpusSpreadOverCores();
  if (cpus.empty()) return;
#pragma omp parallel num_threads(threads)
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[omp_get_thread_num() % cpus.size()], &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
}

}  // namespace dsv4
