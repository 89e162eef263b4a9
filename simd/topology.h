// The NUMA nodes, cores and CPUs this process may use, read with hwloc, and
// the one call that places memory on nodes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsv4 {

struct NumaNode {
  int os_index = 0;                     // the kernel's node number, as numactl names it
  std::vector<std::vector<int>> cores;  // the allowed CPUs (OS numbers) of each physical core on this node
  int64_t memory_bytes = 0;             // its RAM; 0 where hwloc does not know
};

class Topology {
 public:
  // This machine as this process may use it: taskset, numactl and cpuset
  // cgroups narrow it. Read on the first call, which must come before any
  // thread is pinned (SetThreadCount makes it); a machine hwloc cannot read
  // is one node holding every CPU the scheduler allows, one core per CPU.
  static const Topology& OfThisProcess();
  // A made-up machine in hwloc's synthetic syntax ("pack:2 core:8 pu:2"),
  // for tests of placement logic; its PlaceMemory always refuses. Throws
  // std::invalid_argument naming the description when hwloc rejects it.
  static Topology Synthetic(const std::string& description);

  // Nodes that hold at least one allowed CPU, in node order.
  const std::vector<NumaNode>& nodes() const { return nodes_; }
  int PhysicalCores() const;
  // The index in nodes() of the node holding `cpu`, or -1.
  int NodeIndexOfCpu(int cpu) const;

  // Sets the policy of the pages of [address, address + bytes), which nothing
  // has touched yet: spread round robin over `node_indices` (indices into
  // nodes()), or on one node, preferred there (the kernel falls back to
  // other nodes when it is full, rather than killing the process). False
  // where the machine or the kernel cannot (the pages then follow the
  // default policy: the node of the thread that first touches them).
  bool PlaceMemory(void* address, uint64_t bytes, const std::vector<int>& node_indices) const;

  struct Hwloc;  // the loaded hwloc topology, kept for PlaceMemory

 private:
  // within_affinity: only the CPUs of the calling thread's affinity mask.
  Topology(std::shared_ptr<Hwloc> hwloc, bool within_affinity);

  std::shared_ptr<Hwloc> hwloc_;
  std::vector<NumaNode> nodes_;
};

}  // namespace dsv4
