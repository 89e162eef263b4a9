#include "simd/topology.h"

#include <hwloc.h>
#include <sched.h>

#include <map>
#include <set>
#include <stdexcept>
#include <utility>

namespace dsv4 {

struct Topology::Hwloc {
  hwloc_topology_t topology = nullptr;
  ~Hwloc() {
    if (topology != nullptr) hwloc_topology_destroy(topology);
  }
};

namespace {

// Loads a topology (synthetic when `description` is not null); null on failure.
std::shared_ptr<Topology::Hwloc> LoadHwloc(const char* description) {
  auto hwloc = std::make_shared<Topology::Hwloc>();
  if (hwloc_topology_init(&hwloc->topology) != 0) {
    hwloc->topology = nullptr;
    return nullptr;
  }
  if (description != nullptr && hwloc_topology_set_synthetic(hwloc->topology, description) != 0) return nullptr;
  if (hwloc_topology_load(hwloc->topology) != 0) return nullptr;
  return hwloc;
}

// The CPUs the scheduler lets the calling thread use (taskset and numactl
// set this mask; hwloc's "allowed" set only follows cpuset cgroups).
std::vector<int> AffinityCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
  }
  return cpus;
}

// Each allowed CPU its own core, on one node.
NumaNode AffinityAsOneNode() {
  NumaNode node;
  for (const int cpu : AffinityCpus()) node.cores.push_back({cpu});
  if (node.cores.empty()) node.cores.push_back({0});
  return node;
}

}  // namespace

Topology::Topology(std::shared_ptr<Hwloc> hwloc, bool within_affinity) : hwloc_(std::move(hwloc)) {
  if (hwloc_ == nullptr) {
    nodes_.push_back(AffinityAsOneNode());
    return;
  }
  const hwloc_topology_t topology = hwloc_->topology;
  // hwloc 2 shows only allowed CPUs and nodes by default. A node's cpuset
  // holds the CPUs local to it; a PU's core is its CORE ancestor (itself
  // where the machine reports none).
  std::set<int> usable;
  if (within_affinity) {
    const std::vector<int> cpus = AffinityCpus();
    usable.insert(cpus.begin(), cpus.end());
  }
  std::map<int, NumaNode> by_node;
  std::map<std::pair<int, const void*>, size_t> core_slot;
  const int pus = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
  const int numa_nodes = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < pus; ++i) {
    const hwloc_obj_t pu = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, i);
    if (within_affinity && usable.count(static_cast<int>(pu->os_index)) == 0) continue;
    hwloc_obj_t node = nullptr;
    for (int n = 0; n < numa_nodes && node == nullptr; ++n) {
      const hwloc_obj_t candidate = hwloc_get_obj_by_type(topology, HWLOC_OBJ_NUMANODE, n);
      if (candidate->cpuset != nullptr && hwloc_bitmap_isset(candidate->cpuset, pu->os_index)) node = candidate;
    }
    const int node_os = node != nullptr ? static_cast<int>(node->os_index) : 0;
    NumaNode& entry = by_node[node_os];
    entry.os_index = node_os;
    if (node != nullptr) entry.memory_bytes = static_cast<int64_t>(node->attr->numanode.local_memory);
    const hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_CORE, pu);
    const auto [slot, fresh] = core_slot.insert({{node_os, core != nullptr ? core : pu}, entry.cores.size()});
    if (fresh) entry.cores.emplace_back();
    entry.cores[slot->second].push_back(static_cast<int>(pu->os_index));
  }
  for (auto& [os, node] : by_node) nodes_.push_back(std::move(node));
  if (nodes_.empty()) nodes_.push_back(AffinityAsOneNode());
}

const Topology& Topology::OfThisProcess() {
  static const Topology topology(LoadHwloc(nullptr), /*within_affinity=*/true);
  return topology;
}

Topology Topology::Synthetic(const std::string& description) {
  std::shared_ptr<Hwloc> hwloc = LoadHwloc(description.c_str());
  if (hwloc == nullptr) throw std::invalid_argument("hwloc rejects the synthetic topology \"" + description + "\"");
  return Topology(std::move(hwloc), /*within_affinity=*/false);
}

int Topology::PhysicalCores() const {
  size_t cores = 0;
  for (const NumaNode& node : nodes_) cores += node.cores.size();
  return static_cast<int>(cores);
}

int Topology::NodeIndexOfCpu(int cpu) const {
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (const auto& core : nodes_[n].cores) {
      for (const int c : core) {
        if (c == cpu) return static_cast<int>(n);
      }
    }
  }
  return -1;
}

bool Topology::PlaceMemory(void* address, uint64_t bytes, const std::vector<int>& node_indices) const {
  if (hwloc_ == nullptr || node_indices.empty() || bytes == 0) return false;
  const hwloc_topology_t topology = hwloc_->topology;
  const hwloc_topology_support* support = hwloc_topology_get_support(topology);
  if (support == nullptr || !support->membind->set_area_membind) return false;
  hwloc_nodeset_t nodeset = hwloc_bitmap_alloc();
  for (const int index : node_indices) {
    if (index >= 0 && static_cast<size_t>(index) < nodes_.size()) {
      hwloc_bitmap_set(nodeset, static_cast<unsigned>(nodes_[index].os_index));
    }
  }
  const bool spread = hwloc_bitmap_weight(nodeset) > 1;
  bool placed = false;
  if (!hwloc_bitmap_iszero(nodeset) && (!spread || support->membind->interleave_membind)) {
    // BIND without HWLOC_MEMBIND_STRICT is the kernel's "preferred" policy.
    placed = hwloc_set_area_membind(topology, address, bytes, nodeset,
                                    spread ? HWLOC_MEMBIND_INTERLEAVE : HWLOC_MEMBIND_BIND,
                                    HWLOC_MEMBIND_BYNODESET) == 0;
  }
  hwloc_bitmap_free(nodeset);
  return placed;
}

}  // namespace dsv4
