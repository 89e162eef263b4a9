#include "loader/weight_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <unordered_set>

#include "loader/error.h"
#include "loader/memory_limits.h"

namespace dsv4 {
namespace {

// Reads while loading: big enough to keep the device queue full, small
// enough that page faults on the copy interleave with the I/O.
constexpr uint64_t kLoadChunk = uint64_t{64} << 20;

uint64_t PageBytes() { return static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)); }

std::map<const std::string*, int> ShardIndex(const Checkpoint& checkpoint) {
  std::map<const std::string*, int> index;
  for (size_t f = 0; f < checkpoint.shards().size(); ++f) index[&checkpoint.shards()[f]->path()] = static_cast<int>(f);
  return index;
}

std::string Bytes(int64_t bytes) {
  return std::to_string(bytes) + " bytes (" + std::to_string((bytes + (1 << 19)) >> 20) + " MiB)";
}

}  // namespace

std::vector<std::string> ExpertTensorNames(const ModelConfig& config, int64_t block, int64_t expert) {
  const std::string p = BlockPrefix(config, block) + "ffn.experts." + std::to_string(expert) + ".";
  return {p + "w1.weight", p + "w1.scale", p + "w3.weight", p + "w3.scale", p + "w2.weight", p + "w2.scale"};
}

std::vector<WeightStore::Overlay> WeightStore::PlanOverlays(const Checkpoint& checkpoint,
                                                            const std::vector<bool>& resident) {
  const uint64_t page = PageBytes();
  const std::map<const std::string*, int> index = ShardIndex(checkpoint);
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> ranges(checkpoint.shards().size());
  const std::vector<TensorSpec>& schema = checkpoint.schema();
  for (size_t i = 0; i < schema.size(); ++i) {
    if (!resident[i]) continue;
    const TensorView& v = checkpoint.Get(schema[i].name);
    if (v.bytes) ranges[index.at(v.file)].emplace_back(v.file_offset, v.file_offset + v.bytes);
  }
  // Whole pages: neighbours that share a page share the run.
  std::vector<Overlay> overlays;
  for (size_t f = 0; f < ranges.size(); ++f) {
    std::sort(ranges[f].begin(), ranges[f].end());
    for (const auto& [begin, end] : ranges[f]) {
      const uint64_t b = begin / page * page, e = (end + page - 1) / page * page;
      if (!overlays.empty() && overlays.back().file == static_cast<int>(f) && b <= overlays.back().end) {
        overlays.back().end = std::max(overlays.back().end, e);
      } else {
        overlays.push_back({static_cast<int>(f), b, e});
      }
    }
  }
  return overlays;
}

int64_t WeightStore::OverlayBytes(const std::vector<Overlay>& overlays) {
  int64_t bytes = 0;
  for (const Overlay& o : overlays) bytes += static_cast<int64_t>(o.end - o.begin);
  return bytes;
}

WeightStore::Layout WeightStore::LayOut(const Checkpoint& checkpoint, bool mtp_resident) {
  const ModelConfig& config = checkpoint.config();
  const std::map<const std::string*, int> index = ShardIndex(checkpoint);
  Layout layout;
  std::unordered_set<std::string> expert_names;
  for (int64_t block = 0; block < config.NumBlocks(); ++block) {
    for (int64_t e = 0; e < config.n_routed_experts; ++e) {
      std::vector<FileExtent> parts;
      for (const std::string& name : ExpertTensorNames(config, block, e)) {
        const TensorView& v = checkpoint.Get(name);
        layout.sizes.expert_bytes += static_cast<int64_t>(v.bytes);
        expert_names.insert(name);
        parts.push_back({index.at(v.file), v.file_offset, v.bytes});
      }
      layout.expert_items.push_back(std::move(parts));
    }
  }
  const std::vector<TensorSpec>& schema = checkpoint.schema();
  std::vector<bool> dense(schema.size()), dense_and_experts(schema.size());
  for (size_t i = 0; i < schema.size(); ++i) {
    const TensorSpec& spec = schema[i];
    const bool mtp = spec.block >= config.num_hidden_layers;
    if (spec.name == "embed.weight" || (mtp && !mtp_resident)) continue;  // stays mapped
    dense[i] = expert_names.count(spec.name) == 0;
    dense_and_experts[i] = true;
  }
  layout.dense = PlanOverlays(checkpoint, dense);
  layout.all = PlanOverlays(checkpoint, dense_and_experts);
  layout.sizes.dense_bytes = OverlayBytes(layout.dense);
  layout.sizes.all_bytes = OverlayBytes(layout.all);
  layout.sizes.experts = static_cast<int64_t>(layout.expert_items.size());
  layout.sizes.slot_bytes = layout.expert_items.empty() ? 0 : ExpertCache::SlotBytes(layout.expert_items);
  return layout;
}

WeightSizes WeightStore::Measure(const Checkpoint& checkpoint, bool mtp_resident) {
  return LayOut(checkpoint, mtp_resident).sizes;
}

WeightStore::WeightStore(const Checkpoint& checkpoint, const WeightStoreOptions& options) : checkpoint_(checkpoint) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig& config = checkpoint.config();
  experts_per_block_ = config.n_routed_experts;
  const auto& shards = checkpoint.shards();
  for (const auto& shard : shards) {
    // The mapping's base, from any tensor: data sits at base + file_offset.
    const auto& tensors = shard->tensors();
    bases_.push_back(tensors.empty() ? nullptr
                                     : const_cast<uint8_t*>(tensors.begin()->second.data) -
                                           tensors.begin()->second.file_offset);
    // O_DIRECT: large reads at the device's speed, and no second copy of
    // the weights in the page cache (docs/weight-store.md has the figures).
    bool direct_io = options.direct_io;
    try {
      fds_.push_back(OpenForReading(shard->path(), direct_io));
    } catch (...) {
      for (int fd : fds_) ::close(fd);
      throw;
    }
  }

  try {
    const Layout layout = LayOut(checkpoint, options.mtp_resident);
    stats_.expert_bytes = layout.sizes.expert_bytes;
    stats_.dense_bytes = layout.sizes.dense_bytes;
    const int64_t budget = options.mem_budget;
    if (budget >= 0 && stats_.dense_bytes > budget) {
      throw Error("--mem-budget " + Bytes(budget) + " is less than the dense weights of " + checkpoint.dir() +
                  " alone (" + Bytes(stats_.dense_bytes) + ")");
    }
    if (budget < 0) {
      // Copying more than the RAM there is would end in the OOM killer.
      const int64_t available = ReadMemoryLimits().available;
      if (available >= 0 && layout.sizes.all_bytes > available) {
        throw Error(checkpoint.dir() + ": keeping every weight in RAM takes " + Bytes(layout.sizes.all_bytes) +
                    " but " + Bytes(available) + " is available; give --mem-budget BYTES to page the routed experts");
      }
    }
    if (budget < 0 || layout.sizes.all_bytes <= budget) {
      Apply(layout.all, options.lock_memory);
      stats_.resident_bytes = layout.sizes.all_bytes;
    } else {
      const int64_t slot_bytes = layout.sizes.slot_bytes;
      const int64_t slots = std::min<int64_t>((budget - stats_.dense_bytes) / slot_bytes, layout.sizes.experts);
      if (slots < 2) {
        throw Error("--mem-budget " + Bytes(budget) + " leaves room for " + std::to_string(slots) +
                    " routed experts of " + Bytes(slot_bytes) + " beside the dense weights (" +
                    Bytes(stats_.dense_bytes) + "); at least 2 are needed: give at least " +
                    Bytes(stats_.dense_bytes + 2 * slot_bytes));
      }
      Apply(layout.dense, options.lock_memory);
      std::vector<std::string> paths;
      for (const auto& shard : shards) paths.push_back(shard->path());
      cache_ = std::make_unique<ExpertCache>(paths, layout.expert_items, slots, options.direct_io, options.lock_memory);
      stats_.paging = true;
      stats_.cache_slots = slots;
      stats_.slot_bytes = slot_bytes;
      stats_.resident_bytes = stats_.dense_bytes + slots * slot_bytes;
    }
  } catch (...) {
    cache_.reset();
    RestoreMappings();
    for (int fd : fds_) ::close(fd);
    throw;
  }
  stats_.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

WeightStore::~WeightStore() {
  cache_.reset();
  RestoreMappings();
  for (int fd : fds_) ::close(fd);
}

void WeightStore::Apply(const std::vector<Overlay>& overlays, bool lock_memory) {
  for (const Overlay& o : overlays) {
    const SafetensorsFile& shard = *checkpoint_.shards()[o.file];
    uint8_t* target = bases_[o.file] + o.begin;
    const uint64_t bytes = o.end - o.begin;
    // The last page may run past the end of the file; it has no tensor bytes there.
    const uint64_t in_file = std::min<uint64_t>(bytes, shard.size() - o.begin);
    uint8_t* copy = MapWeightMemory(bytes, reinterpret_cast<uintptr_t>(target));
    try {
      for (uint64_t done = 0; done < in_file; done += kLoadChunk) {
        const uint64_t n = std::min(kLoadChunk, bytes - done);
        stats_.loaded_bytes += static_cast<int64_t>(ReadExactly(fds_[o.file], shard.path(), copy + done, o.begin + done,
                                                                n, std::min(n, in_file - done)));
      }
    } catch (...) {
      ::munmap(copy, bytes);
      throw;
    }
    ::mprotect(copy, bytes, PROT_READ);
    // One atomic step replaces the file pages with the copy; huge pages move
    // intact because both addresses agree modulo 2 MiB.
    if (::mremap(copy, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) {
      const std::string why = std::strerror(errno);
      ::munmap(copy, bytes);
      throw Error(shard.path() + ": cannot place " + Bytes(static_cast<int64_t>(bytes)) + " of resident weights (" +
                  why + ")");
    }
    applied_.push_back(o);
    if (lock_memory && ::mlock(target, bytes) != 0) {
      throw Error("cannot lock " + Bytes(static_cast<int64_t>(bytes)) + " of weights in RAM (" +
                  std::strerror(errno) + "); raise `ulimit -l` or run without --mlock");
    }
  }
}

void WeightStore::RestoreMappings() {
  for (const Overlay& o : applied_) {
    uint8_t* target = bases_[o.file] + o.begin;
    const uint64_t bytes = o.end - o.begin;
    // If this fails the copy simply stays: same bytes, freed with the checkpoint's mapping.
    ::mmap(target, bytes, PROT_READ, MAP_SHARED | MAP_FIXED, fds_[o.file], static_cast<off_t>(o.begin));
  }
  applied_.clear();
}

}  // namespace dsv4
