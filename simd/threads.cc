#include "simd/threads.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace dsv4 {

const char kNumaHelp[] =
    "distribute | isolate | off: threads spread over the NUMA nodes with the weights interleaved over them; "
    "threads and weights on the node the process started on; or no placement (numactl's)";

NumaPolicy ParseNumaPolicy(const std::string& text) {
  if (text == "distribute") return NumaPolicy::kDistribute;
  if (text == "isolate") return NumaPolicy::kIsolate;
  if (text == "off") return NumaPolicy::kOff;
  throw std::invalid_argument("--numa: expected distribute, isolate or off, got \"" + text + "\"");
}

const char* NumaPolicyName(NumaPolicy policy) {
  switch (policy) {
    case NumaPolicy::kDistribute:
      return "distribute";
    case NumaPolicy::kIsolate:
      return "isolate";
    case NumaPolicy::kOff:
      return "off";
  }
  return "?";
}

namespace {

// A node's CPUs, one per physical core first, then the cores' second CPUs, and so on.
std::vector<int> CpusCoresFirst(const NumaNode& node) {
  std::vector<int> order;
  for (size_t round = 0;; ++round) {
    const size_t before = order.size();
    for (const auto& core : node.cores) {
      if (round < core.size()) order.push_back(core[round]);
    }
    if (order.size() == before) return order;
  }
}

// `threads` split over `nodes` in proportion to their cores (largest
// remainders first, ties to the lower node).
std::vector<int> ThreadsPerNode(const Topology& topology, const std::vector<int>& nodes, int threads) {
  int64_t cores = 0;
  for (const int n : nodes) cores += static_cast<int64_t>(topology.nodes()[n].cores.size());
  std::vector<int> share(nodes.size());
  std::vector<std::pair<int64_t, size_t>> remainders;
  int given = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const int64_t scaled = threads * static_cast<int64_t>(topology.nodes()[nodes[i]].cores.size());
    share[i] = static_cast<int>(scaled / cores);
    given += share[i];
    remainders.push_back({-(scaled % cores), i});
  }
  std::sort(remainders.begin(), remainders.end());
  for (size_t k = 0; given < threads; ++k, ++given) ++share[remainders[k % remainders.size()].second];
  return share;
}

int DefaultThreads(const Topology& topology, const std::vector<int>& nodes) {
  // OMP_NUM_THREADS, when set, is the user's default, as in every OpenMP program.
  const char* env = std::getenv("OMP_NUM_THREADS");
  const int from_env = env != nullptr ? std::atoi(env) : 0;
  if (from_env > 0) return from_env;
  size_t cores = 0;
  for (const int n : nodes) cores += topology.nodes()[n].cores.size();
  return std::max<int>(1, static_cast<int>(cores));
}

TeamPlacement g_placement;

}  // namespace

TeamPlacement PlanTeam(const Topology& topology, int threads, NumaPolicy policy, int home_cpu, bool user_placed) {
  TeamPlacement placement;
  placement.policy = policy;
  placement.topology_nodes = static_cast<int>(topology.nodes().size());
  std::vector<int> nodes;
  if (policy == NumaPolicy::kIsolate) {
    nodes.push_back(std::max(0, topology.NodeIndexOfCpu(home_cpu)));
  } else {
    for (size_t n = 0; n < topology.nodes().size(); ++n) nodes.push_back(static_cast<int>(n));
  }
  placement.threads = threads > 0 ? threads : DefaultThreads(topology, nodes);
  if (policy == NumaPolicy::kOff) return placement;
  const std::vector<int> share = ThreadsPerNode(topology, nodes, placement.threads);
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (share[i] == 0) continue;
    const std::vector<int> cpus = CpusCoresFirst(topology.nodes()[nodes[i]]);
    for (int k = 0; k < share[i]; ++k) {
      placement.cpus.push_back(cpus[k % cpus.size()]);
      placement.thread_nodes.push_back(nodes[i]);
    }
    // On a one-node machine first touch already puts every page there.
    if (placement.topology_nodes > 1) placement.memory_nodes.push_back(nodes[i]);
  }
  if (user_placed) {
    placement.cpus.clear();
    placement.thread_nodes.clear();
  }
  return placement;
}

std::string TeamPlacement::Summary(const Topology& topology) const {
  std::string line = std::string("numa ") + NumaPolicyName(policy) + ", " + std::to_string(topology_nodes) +
                     (topology_nodes == 1 ? " node: " : " nodes: ") + std::to_string(threads) + " threads";
  auto node_name = [&](int index) { return std::to_string(topology.nodes()[index].os_index); };
  if (policy == NumaPolicy::kOff) return line + ", placed by OpenMP and the kernel";
  if (cpus.empty()) {
    line += ", placed by OMP_PLACES / OMP_PROC_BIND";
  } else {
    line += " pinned (";
    for (size_t t = 0; t < thread_nodes.size();) {
      size_t end = t;
      while (end < thread_nodes.size() && thread_nodes[end] == thread_nodes[t]) ++end;
      line += t > 0 ? ", node " : "node ";
      line += node_name(thread_nodes[t]) + ": " + std::to_string(end - t);
      t = end;
    }
    line += ")";
  }
  if (memory_nodes.empty()) return line + ", weights where first touched";
  line += memory_nodes.size() > 1 ? ", weights interleaved over nodes " : ", weights on node ";
  for (size_t i = 0; i < memory_nodes.size(); ++i) {
    if (i > 0) line += ",";
    line += node_name(memory_nodes[i]);
  }
  return line;
}

const TeamPlacement& SetThreadCount(int threads, NumaPolicy policy) {
  // Read before any pinning narrows the calling thread's mask; the home CPU
  // too, so that a second call sees the same machine and the same node.
  const Topology& topology = Topology::OfThisProcess();
  static const int home_cpu = sched_getcpu();
  const bool user_placed = std::getenv("OMP_PROC_BIND") != nullptr || std::getenv("OMP_PLACES") != nullptr;
  g_placement = PlanTeam(topology, threads, policy, home_cpu, user_placed);
  omp_set_num_threads(g_placement.threads);
  if (g_placement.cpus.empty()) return g_placement;
  const std::vector<int>& cpus = g_placement.cpus;
#pragma omp parallel num_threads(g_placement.threads)
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus[omp_get_thread_num() % cpus.size()], &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  }
  return g_placement;
}

void LeaveTeamCpu() {
  if (g_placement.cpus.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int cpu : g_placement.cpus) CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void PlaceWeightMemory(void* address, uint64_t bytes) {
  if (!g_placement.memory_nodes.empty()) {
    Topology::OfThisProcess().PlaceMemory(address, bytes, g_placement.memory_nodes);
  }
}

}  // namespace dsv4
