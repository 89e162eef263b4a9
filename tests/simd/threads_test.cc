// The team's placement (simd/threads.h) on made-up machines: hwloc's synthetic
// topologies stand in for the two-socket servers this machine is not.
#include "simd/threads.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "simd/topology.h"

namespace dsv4 {
namespace {

// Two sockets, one NUMA node each, 4 cores of 2 hardware threads per node.
// hwloc numbers the CPUs 0-7 on node 0 and 8-15 on node 1, siblings adjacent.
Topology TwoNodes() { return Topology::Synthetic("numa:2 core:4 pu:2"); }

std::vector<int> Nodes(const TeamPlacement& placement) { return placement.thread_nodes; }

TEST(Topology, SyntheticMachineHasItsNodesCoresAndCpus) {
  const Topology topology = TwoNodes();
  ASSERT_EQ(topology.nodes().size(), 2u);
  EXPECT_EQ(topology.PhysicalCores(), 8);
  EXPECT_EQ(topology.nodes()[1].os_index, 1);
  ASSERT_EQ(topology.nodes()[1].cores.size(), 4u);
  EXPECT_EQ(topology.nodes()[1].cores[0], (std::vector<int>{8, 9}));
  EXPECT_EQ(topology.NodeIndexOfCpu(5), 0);
  EXPECT_EQ(topology.NodeIndexOfCpu(12), 1);
  EXPECT_EQ(topology.NodeIndexOfCpu(99), -1);
}

TEST(Topology, ABadSyntheticDescriptionIsRefusedByName) {
  try {
    Topology::Synthetic("sockets:banana");
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sockets:banana"), std::string::npos) << e.what();
  }
}

TEST(TeamPlacement, DistributeSplitsThreadsOverNodesOnePerCoreFirst) {
  const TeamPlacement placement = PlanTeam(TwoNodes(), 8, NumaPolicy::kDistribute, 0, false);
  EXPECT_EQ(placement.threads, 8);
  // Consecutive threads share a node, so a static split gives each node a contiguous part of every matrix.
  EXPECT_EQ(Nodes(placement), (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1}));
  // One hardware thread per core: never two threads on siblings.
  EXPECT_EQ(placement.cpus, (std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14}));
  EXPECT_EQ(placement.memory_nodes, (std::vector<int>{0, 1}));
}

TEST(TeamPlacement, MoreThreadsThanCoresUseSiblingsThenWrap) {
  const TeamPlacement siblings = PlanTeam(TwoNodes(), 10, NumaPolicy::kDistribute, 0, false);
  EXPECT_EQ(siblings.cpus, (std::vector<int>{0, 2, 4, 6, 1, 8, 10, 12, 14, 9}));
  const TeamPlacement wrapped = PlanTeam(TwoNodes(), 36, NumaPolicy::kDistribute, 0, false);
  ASSERT_EQ(wrapped.cpus.size(), 36u);
  EXPECT_EQ(std::set<int>(wrapped.cpus.begin(), wrapped.cpus.end()).size(), 16u);
  EXPECT_EQ(wrapped.cpus[16], 0);  // node 0's 17th thread starts its CPUs again
}

TEST(TeamPlacement, OddCountsAndUnevenNodesSplitInProportionToCores) {
  EXPECT_EQ(Nodes(PlanTeam(TwoNodes(), 3, NumaPolicy::kDistribute, 0, false)), (std::vector<int>{0, 0, 1}));
  // One thread: one node, and the weights there too, not on a node nobody runs on.
  const TeamPlacement one = PlanTeam(TwoNodes(), 1, NumaPolicy::kDistribute, 0, false);
  EXPECT_EQ(Nodes(one), (std::vector<int>{0}));
  EXPECT_EQ(one.memory_nodes, (std::vector<int>{0}));
  // Three nodes of 2 cores: 4 threads give 2, 1, 1.
  const Topology three = Topology::Synthetic("numa:3 core:2 pu:1");
  EXPECT_EQ(Nodes(PlanTeam(three, 4, NumaPolicy::kDistribute, 0, false)), (std::vector<int>{0, 0, 1, 2}));
}

TEST(TeamPlacement, DefaultCountIsThePhysicalCoresThePolicyUses) {
  const char* saved = std::getenv("OMP_NUM_THREADS");
  const std::string saved_value = saved != nullptr ? saved : "";
  unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(PlanTeam(TwoNodes(), 0, NumaPolicy::kDistribute, 0, false).threads, 8);
  EXPECT_EQ(PlanTeam(TwoNodes(), 0, NumaPolicy::kIsolate, 0, false).threads, 4);
  setenv("OMP_NUM_THREADS", "6", 1);
  EXPECT_EQ(PlanTeam(TwoNodes(), 0, NumaPolicy::kDistribute, 0, false).threads, 6);
  if (saved != nullptr) {
    setenv("OMP_NUM_THREADS", saved_value.c_str(), 1);
  } else {
    unsetenv("OMP_NUM_THREADS");
  }
}

TEST(TeamPlacement, IsolateKeepsTeamAndWeightsOnTheHomeNode) {
  const TeamPlacement placement = PlanTeam(TwoNodes(), 4, NumaPolicy::kIsolate, /*home_cpu=*/11, false);
  EXPECT_EQ(placement.cpus, (std::vector<int>{8, 10, 12, 14}));
  EXPECT_EQ(placement.memory_nodes, (std::vector<int>{1}));
  // A home CPU the topology does not know (hwloc and the scheduler disagree): the first node.
  EXPECT_EQ(PlanTeam(TwoNodes(), 2, NumaPolicy::kIsolate, 99, false).memory_nodes, (std::vector<int>{0}));
}

TEST(TeamPlacement, OffAndUserPlacementLeaveThreadsAlone) {
  const TeamPlacement off = PlanTeam(TwoNodes(), 4, NumaPolicy::kOff, 0, false);
  EXPECT_EQ(off.threads, 4);
  EXPECT_TRUE(off.cpus.empty());
  EXPECT_TRUE(off.memory_nodes.empty());
  // OMP_PLACES / OMP_PROC_BIND: the user placed the threads; the weights still spread.
  const TeamPlacement user = PlanTeam(TwoNodes(), 4, NumaPolicy::kDistribute, 0, true);
  EXPECT_TRUE(user.cpus.empty());
  EXPECT_EQ(user.memory_nodes, (std::vector<int>{0, 1}));
}

TEST(TeamPlacement, OneNodeMachinesKeepFirstTouch) {
  const Topology one = Topology::Synthetic("pack:1 core:4 pu:2");
  const TeamPlacement placement = PlanTeam(one, 4, NumaPolicy::kDistribute, 0, false);
  EXPECT_EQ(placement.cpus, (std::vector<int>{0, 2, 4, 6}));
  EXPECT_TRUE(placement.memory_nodes.empty());
  EXPECT_EQ(placement.Summary(one), "numa distribute, 1 node: 4 threads pinned (node 0: 4), weights where first touched");
}

TEST(TeamPlacement, SummarySaysWhereThreadsAndWeightsGo) {
  const Topology two = TwoNodes();
  EXPECT_EQ(PlanTeam(two, 6, NumaPolicy::kDistribute, 0, false).Summary(two),
            "numa distribute, 2 nodes: 6 threads pinned (node 0: 3, node 1: 3), weights interleaved over nodes 0,1");
  EXPECT_EQ(PlanTeam(two, 2, NumaPolicy::kIsolate, 9, false).Summary(two),
            "numa isolate, 2 nodes: 2 threads pinned (node 1: 2), weights on node 1");
  EXPECT_EQ(PlanTeam(two, 2, NumaPolicy::kOff, 0, false).Summary(two),
            "numa off, 2 nodes: 2 threads, placed by OpenMP and the kernel");
  EXPECT_EQ(PlanTeam(two, 2, NumaPolicy::kDistribute, 0, true).Summary(two),
            "numa distribute, 2 nodes: 2 threads, placed by OMP_PLACES / OMP_PROC_BIND, weights interleaved over nodes 0,1");
}

TEST(TeamPlacement, PolicyNamesParseAndBadOnesAreRefused) {
  for (const NumaPolicy policy : {NumaPolicy::kDistribute, NumaPolicy::kIsolate, NumaPolicy::kOff}) {
    EXPECT_EQ(ParseNumaPolicy(NumaPolicyName(policy)), policy);
  }
  EXPECT_THROW(ParseNumaPolicy("interleave"), std::invalid_argument);
}

TEST(TeamPlacement, HelperThreadsLeaveTheirParentsCpu) {
  const TeamPlacement& placement = SetThreadCount(2);
  if (placement.cpus.size() < 2 || placement.cpus[0] == placement.cpus[1]) GTEST_SKIP() << "one CPU";
  auto cpus_of_this_thread = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    return CPU_COUNT(&set);
  };
  int inherited = 0, widened = 0;
  // This (main) thread is team thread 0, pinned to one CPU; a thread it starts inherits that.
  std::thread([&] {
    inherited = cpus_of_this_thread();
    LeaveTeamCpu();
    widened = cpus_of_this_thread();
  }).join();
  EXPECT_EQ(inherited, 1);
  EXPECT_EQ(widened, 2);
}

TEST(Topology, ThisMachineIsReadAndItsMemoryCanBePlaced) {
  const Topology& topology = Topology::OfThisProcess();
  ASSERT_GE(topology.nodes().size(), 1u);
  EXPECT_GE(topology.PhysicalCores(), 1);
  // Fresh memory placed on the first node (preferred), then used as usual.
  const size_t bytes = size_t{4} << 20;
  void* memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  // Containers may forbid memory policies (seccomp without CAP_SYS_NICE): then nothing changes.
  const bool placed = topology.PlaceMemory(memory, bytes, {0});
  std::memset(memory, 7, bytes);
  if (placed) {
    char start[32];
    std::snprintf(start, sizeof start, "%lx ", reinterpret_cast<unsigned long>(memory));
    std::ifstream maps("/proc/self/numa_maps");
    std::string line, policy;
    while (std::getline(maps, line)) {
      if (line.rfind(start, 0) == 0) policy = line;
    }
    EXPECT_NE(policy.find("prefer"), std::string::npos) << "numa_maps: " << policy;
  }
  EXPECT_EQ(static_cast<unsigned char*>(memory)[bytes - 1], 7);
  munmap(memory, bytes);
  // A synthetic machine has no memory to place.
  EXPECT_FALSE(TwoNodes().PlaceMemory(nullptr, bytes, {0, 1}));
}

}  // namespace
}  // namespace dsv4
