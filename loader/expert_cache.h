// A fixed number of owned, aligned slots that hold routed experts read from
// the shards with pread (O_DIRECT where the filesystem allows). Reads happen
// on one background thread that serves demand misses first and prefetch
// hints next. Eviction takes, among the slots nobody holds, the expert used
// least often lately (use counts halve as they age; ties go to the least
// recently used): plain LRU would evict everything under the layer-by-layer
// cycle of decode once the cache is smaller than one token's working set.
// A slot never used before is filled only while its first touch pays off
// (FreshSlotPaysOff), or for a waiting caller with nothing to evict.
// Because every byte comes from an explicit read, a shard truncated or
// damaged after load is a dsv4::Error naming the file, never a SIGBUS.
// docs/weight-store.md explains the policy.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dsv4 {

// Bytes [offset, offset + bytes) of file `file` (an index into the paths).
struct FileExtent {
  int file = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct ExpertCacheStats {
  int64_t hits = 0;        // resident from an earlier use when acquired
  int64_t misses = 0;      // read for this use, ahead by a prefetch or on demand
  int64_t prefetched = 0;  // misses whose read a prefetch hint started
  int64_t bytes_read = 0;  // from the files, alignment padding included
  double read_seconds = 0;   // time the reader spent in pread
  double stall_seconds = 0;  // time callers of Acquire waited for reads
};

// Reads [offset, offset + bytes) of `fd` into `out` (all of it, or throws
// dsv4::Error naming `path`: an I/O error, or the file ends too soon). With
// O_DIRECT, out, offset and bytes must be multiples of kDirectIoAlignment;
// a read may then end at the end of the file, and `needed` says how many
// bytes must really be there.
// Returns the bytes read.
uint64_t ReadExactly(int fd, const std::string& path, uint8_t* out, uint64_t offset, uint64_t bytes,
                     uint64_t needed);

inline constexpr uint64_t kDirectIoAlignment = 4096;

// Opens `path` read-only, with O_DIRECT if `direct_io` and the filesystem
// takes it (tmpfs and some network filesystems do not); `direct_io` then
// says what was granted. Throws dsv4::Error naming the file.
int OpenForReading(const std::string& path, bool& direct_io);

// Fresh zeroed anonymous memory for weights, with transparent huge pages
// asked for (MADV_HUGEPAGE), at an address congruent to `like` modulo 2 MiB
// so that it can later be moved to `like` without splitting them. Release
// with munmap(p, bytes). Throws dsv4::Error if the system has no memory.
uint8_t* MapWeightMemory(uint64_t bytes, uintptr_t like = 0);

// Sequential read throughput of `path` in GB/s (1e9 bytes/s): the first
// `bytes` (or the whole file) read once in `chunk`-byte preads, the way the
// cache reads a miss, after asking the kernel to drop the file's cached pages.
double MeasureFileReadBandwidth(const std::string& path, int64_t bytes, int64_t chunk, bool direct_io);

// Writes one byte per 4 KiB page of [p, p + bytes), so that the kernel
// provides (and zeroes) every page: what a fresh slot costs before its read.
// Returns the seconds it took.
double TouchPages(uint8_t* p, int64_t bytes);

// GB/s at which this process gets fresh memory the way the cache's slots get
// it: `bytes` mapped (MapWeightMemory) and touched once (TouchPages) in
// `piece`-byte parts until `seconds` are spent, then unmapped; the slowest
// part's rate. A VM's host may keep memory the guest freed in the last
// seconds backed for a while: the first gigabyte or two then comes at 10+
// GB/s, the rest (what a cache of tens of GB fills) at its own rate.
double MeasureFirstTouchBandwidth(int64_t bytes, int64_t piece, double seconds);

// What filling slots has cost so far, to decide whether the next miss takes
// a slot never used before (whose pages the kernel must first provide and
// zero) or evicts a resident item.
struct SlotFillCosts {
  double touch_seconds = 0;  // first touch of fresh slots' pages
  int64_t touch_bytes = 0;
  double read_seconds = 0;  // reads of misses (pread only)
  int64_t read_bytes = 0;
  double growth_touch_seconds = 0;  // first touches of slots no waiting caller needed
  double reread_seconds = 0;        // reads of items that had been evicted before
};

// Whether a read no waiting caller forces into a fresh slot (read-ahead, or
// a miss that could evict instead) should take one. Yes while too few bytes
// were measured to judge (kFillCostSampleBytes each), and whenever fresh
// memory is no slower to touch than the disk is to read (most bare-metal
// machines, where a cached expert pays for its slot at its first hit). Where it is slower (a VM that hands freed memory back to its host:
// 0.3-0.6 GB/s against a 2-3 GB/s disk), a fresh slot pays off only after
// many hits, which a short run never gets: the cache then grows only by
// spending on fresh slots a share (kGrowthShareOfReReads) of the time it has
// spent re-reading evicted items, so that growing costs a run at most that
// share more than keeping the cache it has, whatever the run's length, and a
// long run still grows it to its full size.
inline constexpr int64_t kFillCostSampleBytes = int64_t{64} << 20;
inline constexpr double kGrowthShareOfReReads = 0.1;
bool FreshSlotPaysOff(const SlotFillCosts& costs);

class ExpertCache {
 public:
  // paths: the files; items[i]: the tensors of expert i, whose addresses
  // Acquire returns in the same order; slots: how many experts stay resident
  // (>= 2, so one can be read while another is in use).
  ExpertCache(const std::vector<std::string>& paths, const std::vector<std::vector<FileExtent>>& items,
              int64_t slots, bool direct_io, bool lock_memory);
  ~ExpertCache();
  ExpertCache(const ExpertCache&) = delete;
  ExpertCache& operator=(const ExpertCache&) = delete;

  // Bytes of one slot: the largest item laid out with its reads aligned.
  static int64_t SlotBytes(const std::vector<std::vector<FileExtent>>& items);

  struct Pinned {
    std::vector<const uint8_t*> parts;  // one per FileExtent of the item, in order
    std::shared_ptr<const void> pin;    // the slot stays put while this lives
  };
  // The bytes of item `item`, read now if not resident (and waiting for a
  // read in flight). Throws dsv4::Error if the read fails. Handles must not
  // outlive the cache.
  Pinned Acquire(int64_t item);
  // A hint that these items are needed soon, in this order.
  void Prefetch(const std::vector<int64_t>& items);

  ExpertCacheStats stats() const;
  int64_t slots() const { return static_cast<int64_t>(slots_.size()); }
  // Slots holding an expert now (fewer than slots() until the cache has
  // grown to its full size).
  int64_t filled_slots() const;
  // What filling slots has cost so far (the inputs of FreshSlotPaysOff).
  SlotFillCosts fill_costs() const;
  int64_t slot_bytes() const { return slot_bytes_; }
  bool direct_io() const { return direct_io_; }

 private:
  enum class SlotState { kEmpty, kLoading, kReady, kFailed };
  struct Slot {
    int64_t item = -1;
    SlotState state = SlotState::kEmpty;
    int pins = 0;
    uint64_t last_use = 0;   // clock of the last acquisition
    // Named by a prefetch hint (read ahead, or already resident when hinted)
    // and not acquired since: kept until then, except that a read for a
    // caller who waits may take back the one hinted last (needed last).
    bool hinted = false;
    uint64_t hinted_at = 0;
    bool unclaimed = false;  // read and not acquired since: its first acquisition is a miss
    bool demanded = false;   // read for a caller who waits: never taken back before it gets it
    std::string error;
  };
  // One pread: a run of the item's tensors, aligned, at `slot_offset` in the slot.
  struct Read {
    int file;
    uint64_t offset, bytes, needed;
    uint64_t slot_offset;
  };
  struct Layout {
    std::vector<Read> reads;
    std::vector<uint64_t> part_offsets;  // of each tensor in the slot
  };
  static Layout LayOut(const std::vector<FileExtent>& parts);
  static uint64_t LayoutBytes(const Layout& layout);

  void ReaderLoop();
  struct Victim {
    int slot = -1;       // -1: none may be given up yet
    bool grows = false;  // a fresh slot, taken where no caller had to have it
  };
  // The slot the next read may use: a used empty one, else a fresh one while
  // that pays off (or a caller waits and nothing can be evicted), else the
  // coldest. Demand reads may take back a hinted slot; read-ahead never does,
  // so where fresh slots do not pay off, read-ahead waits for used ones.
  Victim FindVictim(bool demand) const;
  // Writes one byte per page of a fresh slot, so that the kernel's work to
  // provide its pages is timed apart from the read. Returns the seconds.
  double TouchSlot(int slot);
  void Load(int slot, int64_t item);
  void Unpin(int slot);

  std::vector<std::string> paths_;
  std::vector<int> fds_;
  std::vector<Layout> layouts_;
  int64_t slot_bytes_ = 0;
  bool direct_io_ = false;
  uint8_t* memory_ = nullptr;
  uint64_t memory_bytes_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;   // the reader waits for requests or a free slot
  std::condition_variable ready_cv_;  // Acquire waits for reads
  std::vector<Slot> slots_;
  std::vector<uint8_t> touched_;      // per slot: its pages were written once
  std::vector<uint8_t> evicted_;      // per item: was resident once and evicted
  SlotFillCosts fill_costs_;
  std::vector<int> slot_of_;          // item -> slot, -1 if none
  std::vector<uint8_t> queued_;       // kNotQueued, kQueuedPrefetch or kQueuedDemand per item
  std::vector<uint32_t> uses_;        // acquisitions per item, halved every items() acquisitions
  int64_t acquisitions_since_aging_ = 0;
  std::deque<int64_t> demand_, prefetch_;
  uint64_t clock_ = 0;
  bool stop_ = false;
  ExpertCacheStats stats_;
  std::thread reader_;
};

}  // namespace dsv4
