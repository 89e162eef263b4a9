// Where a checkpoint's weights live while the model runs. Every shard stays
// mapped (Checkpoint); the store decides what is resident, under an optional
// budget of resident weight bytes (--mem-budget):
// - dense weights of the main layers and the head (attention, compressors,
//   indexer, router, shared expert, norms, hyper-connections) are read once
//   into anonymous memory (huge pages where the kernel allows, optionally
//   mlocked) that is then moved onto the very addresses the file had in the
//   mapping, so every view in ModelWeights stays valid and now points at RAM
//   that no later change to the file can take away;
// - routed experts: the same, when no budget is given or they fit in it;
//   otherwise an ExpertCache of as many experts as the rest of the budget
//   holds serves them (engine/paged_experts.h);
// - the embedding stays mapped: a token touches one row of it;
// - the MTP block is resident like a main layer when speculative decoding
//   runs it (mtp_resident), and stays mapped otherwise.
// docs/weight-store.md gives the reasons and the memory accounting.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "loader/checkpoint.h"
#include "loader/expert_cache.h"

namespace dsv4 {

struct WeightStoreOptions {
  int64_t mem_budget = -1;   // resident weight bytes (dense + experts); < 0: no limit
  bool lock_memory = false;  // mlock everything resident
  bool direct_io = true;     // reads (load, expert misses) bypass the page cache where the filesystem allows
  bool mtp_resident = false; // the MTP block counts as dense weights and experts (speculative decoding runs it)
};

// What a checkpoint's weights take in the store, before any is loaded: what
// a memory plan weighs (engine/runtime/memory_plan.h).
struct WeightSizes {
  int64_t dense_bytes = 0;   // resident dense weights (whole pages)
  int64_t all_bytes = 0;     // dense weights and every routed expert (whole pages)
  int64_t expert_bytes = 0;  // every routed expert of every block, as stored
  int64_t slot_bytes = 0;    // one slot of the expert cache
  int64_t experts = 0;       // routed experts of all main blocks
  // The least budget that pages: the dense weights and two cache slots.
  int64_t MinimumBudget() const { return dense_bytes + 2 * slot_bytes; }
};

struct WeightStoreStats {
  int64_t dense_bytes = 0;     // resident dense weights (whole pages)
  int64_t expert_bytes = 0;    // every routed expert of every block, as stored
  int64_t resident_bytes = 0;  // dense + resident experts or the cache's slots
  int64_t loaded_bytes = 0;    // read from the shards while loading
  double load_seconds = 0;
  bool paging = false;         // experts come through the cache
  int64_t cache_slots = 0;
  int64_t slot_bytes = 0;
};

class WeightStore {
 public:
  // Throws dsv4::Error if the dense weights alone exceed the budget, if it
  // leaves room for fewer than 2 experts, if there is no budget and the
  // weights exceed the available RAM, or if a shard cannot be read.
  WeightStore(const Checkpoint& checkpoint, const WeightStoreOptions& options);
  // The sizes the constructor would work with; reads nothing but headers.
  static WeightSizes Measure(const Checkpoint& checkpoint, bool mtp_resident);
  // Puts the file mappings back, so the checkpoint stays usable.
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  const WeightStoreStats& stats() const { return stats_; }
  // The cache serving routed experts; null when every expert is resident.
  ExpertCache* expert_cache() const { return cache_.get(); }
  // The cache item of expert `expert` of block `block`; its parts are the
  // tensors ExpertTensorNames lists, in that order.
  int64_t ExpertItem(int64_t block, int64_t expert) const { return block * experts_per_block_ + expert; }

 private:
  // A page-aligned run of shard `file` that is resident.
  struct Overlay {
    int file;
    uint64_t begin, end;
  };
  // What is resident in either case, and the cache items when paging.
  struct Layout {
    std::vector<Overlay> dense, all;
    std::vector<std::vector<FileExtent>> expert_items;
    WeightSizes sizes;
  };
  static Layout LayOut(const Checkpoint& checkpoint, bool mtp_resident);
  static std::vector<Overlay> PlanOverlays(const Checkpoint& checkpoint, const std::vector<bool>& resident);
  static int64_t OverlayBytes(const std::vector<Overlay>& overlays);
  void Apply(const std::vector<Overlay>& overlays, bool lock_memory);
  void RestoreMappings();

  const Checkpoint& checkpoint_;
  int64_t experts_per_block_ = 0;
  std::vector<uint8_t*> bases_;  // mapped address of each shard
  std::vector<int> fds_;         // to read the shards and to map them back
  std::vector<Overlay> applied_;
  std::unique_ptr<ExpertCache> cache_;
  WeightStoreStats stats_;
};

// The six tensors of routed expert `expert` of block `block`: the weight and
// scale of w1, w3 and w2, in that order.
std::vector<std::string> ExpertTensorNames(const ModelConfig& config, int64_t block, int64_t expert);

}  // namespace dsv4
