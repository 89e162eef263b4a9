// The one OpenMP team every kernel runs on: its size, where its threads run
// and where the weights they stream live (NUMA).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "simd/topology.h"

namespace dsv4 {

enum class NumaPolicy {
  kDistribute,  // the team over every node that holds allowed CPUs, weights interleaved over them
  kIsolate,     // the team and the weights on one node: the one the process started on
  kOff,         // no pinning, no memory policy: OpenMP's and the kernel's (numactl's) defaults
};

extern const char kNumaHelp[];
// "distribute", "isolate" or "off"; throws std::invalid_argument naming --numa.
NumaPolicy ParseNumaPolicy(const std::string& text);
const char* NumaPolicyName(NumaPolicy policy);

// Where a team runs and where its weights go.
struct TeamPlacement {
  NumaPolicy policy = NumaPolicy::kDistribute;
  int threads = 1;
  std::vector<int> cpus;          // the CPU of thread i; empty: threads not pinned
  std::vector<int> thread_nodes;  // the node (index into Topology::nodes()) of thread i; empty when not pinned
  std::vector<int> memory_nodes;  // nodes (indices) fresh weight memory is spread over; empty: first touch
  int topology_nodes = 1;         // nodes holding allowed CPUs

  // One line: the policy, threads per node and where weights go.
  std::string Summary(const Topology& topology) const;
};

// The placement of a team of `threads` (<= 0: OMP_NUM_THREADS when set, else
// the physical cores of the nodes the policy uses). Distribute gives each
// node a share of the threads in proportion to its cores, consecutive
// threads on one node (the threads' runs of rows, simd/piece_runs.h, then
// hand each node a contiguous part of every matrix), one per physical core before any SMT
// sibling; isolate does the same on the node of `home_cpu`. When
// `user_placed` (OMP_PROC_BIND or OMP_PLACES set) no thread is pinned.
TeamPlacement PlanTeam(const Topology& topology, int threads, NumaPolicy policy, int home_cpu, bool user_placed);

// Plans the team on this machine, sets the OpenMP team size and pins each
// thread; returns the placement. Call it outside any parallel region, before
// the first kernel runs.
const TeamPlacement& SetThreadCount(int threads, NumaPolicy policy = NumaPolicy::kDistribute);

// For a helper thread (I/O) started by a pinned team thread after
// SetThreadCount, which inherits that thread's single CPU: lets the calling
// thread run on every CPU of the team, so it does not compete with one team
// thread alone. (Threads started before SetThreadCount keep the process's
// CPUs and need not call it; SetThreadCount must not run while they do.)
void LeaveTeamCpu();

// Applies the current team's memory policy to fresh weight memory, before
// anything touches it, so that the threads streaming the weights read them
// from every node's memory controllers rather than from the node of the one
// thread that loaded them.
void PlaceWeightMemory(void* address, uint64_t bytes);

}  // namespace dsv4
