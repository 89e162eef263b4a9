#include "loader/expert_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <limits>
#include <numeric>

#include "loader/error.h"
#include "simd/threads.h"

namespace dsv4 {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kHugePage = uint64_t{2} << 20;
// Writing one byte per 4 KiB makes the kernel provide every page of a range
// (larger pages are only written more often than needed).
constexpr int64_t kSmallPage = 4096;
constexpr uint8_t kNotQueued = 0, kQueuedPrefetch = 1, kQueuedDemand = 2;

uint64_t AlignDown(uint64_t x, uint64_t a) { return x / a * a; }
uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

int OpenForReading(const std::string& path, bool& direct_io) {
  if (direct_io) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd >= 0) return fd;
    if (errno != EINVAL) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
    direct_io = false;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  return fd;
}

uint8_t* MapWeightMemory(uint64_t bytes, uintptr_t like) {
  const uint64_t reserve = bytes + kHugePage;
  void* raw = ::mmap(nullptr, reserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    throw Error("cannot map " + std::to_string(bytes) + " bytes of memory for weights (" + std::strerror(errno) + ")");
  }
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = begin + ((like % kHugePage) - (begin % kHugePage) + kHugePage) % kHugePage;
  if (start > begin) ::munmap(raw, start - begin);
  const uintptr_t end = start + bytes, reserve_end = begin + reserve;
  if (reserve_end > end) ::munmap(reinterpret_cast<void*>(end), reserve_end - end);
  // Fewer TLB misses while streaming gigabytes of weights; a kernel without
  // transparent huge pages refuses the advice and small pages serve.
  ::madvise(reinterpret_cast<void*>(start), bytes, MADV_HUGEPAGE);
  PlaceWeightMemory(reinterpret_cast<void*>(start), bytes);
  return reinterpret_cast<uint8_t*>(start);
}

uint64_t ReadExactly(int fd, const std::string& path, uint8_t* out, uint64_t offset, uint64_t bytes,
                     uint64_t needed) {
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd, out + done, bytes - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(path + ": read of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                  " failed (" + std::strerror(errno) + ")");
    }
    if (n == 0) break;  // end of file
    done += static_cast<uint64_t>(n);
  }
  if (done < needed) {
    throw Error(path + ": file ends at byte " + std::to_string(offset + done) + " but tensor data runs to byte " +
                std::to_string(offset + needed) + " (truncated after it was opened?)");
  }
  return done;
}

double MeasureFileReadBandwidth(const std::string& path, int64_t bytes, int64_t chunk, bool direct_io) {
  const int fd = OpenForReading(path, direct_io);
  struct stat st {};
  ::fstat(fd, &st);
  // Cold: whatever an earlier run left in the page cache is dropped first.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const uint64_t total = AlignDown(std::min<uint64_t>(bytes, st.st_size), kDirectIoAlignment);
  const uint64_t step = AlignUp(static_cast<uint64_t>(chunk), kDirectIoAlignment);
  uint8_t* buffer = MapWeightMemory(step);
  const Clock::time_point start = Clock::now();
  try {
    for (uint64_t offset = 0; offset < total; offset += step) {
      const uint64_t n = std::min(step, total - offset);
      ReadExactly(fd, path, buffer, offset, n, n);
    }
  } catch (...) {
    ::munmap(buffer, step);
    ::close(fd);
    throw;
  }
  const double seconds = SecondsSince(start);
  ::munmap(buffer, step);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  return total / seconds / 1e9;
}

double TouchPages(uint8_t* p, int64_t bytes) {
  const Clock::time_point start = Clock::now();
  volatile uint8_t* base = p;
  for (int64_t at = 0; at < bytes; at += kSmallPage) base[at] = 0;
  return SecondsSince(start);
}

double MeasureFirstTouchBandwidth(int64_t bytes, int64_t piece, double seconds) {
  uint8_t* memory = MapWeightMemory(static_cast<uint64_t>(bytes));
  double slowest = std::numeric_limits<double>::infinity(), spent = 0;
  for (int64_t at = 0; at < bytes && spent < seconds; at += piece) {
    const int64_t n = std::min(piece, bytes - at);
    const double s = TouchPages(memory + at, n);
    spent += s;
    slowest = std::min(slowest, n / s / 1e9);
  }
  ::munmap(memory, static_cast<uint64_t>(bytes));
  return slowest;
}

bool FreshSlotPaysOff(const SlotFillCosts& costs) {
  if (costs.touch_bytes < kFillCostSampleBytes || costs.read_bytes < kFillCostSampleBytes) return true;
  // Seconds per byte: touching no slower than reading.
  if (costs.touch_seconds * costs.read_bytes <= costs.read_seconds * costs.touch_bytes) return true;
  return costs.growth_touch_seconds <= kGrowthShareOfReReads * costs.reread_seconds;
}

ExpertCache::Layout ExpertCache::LayOut(const std::vector<FileExtent>& parts) {
  std::vector<size_t> order(parts.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return parts[a].file != parts[b].file ? parts[a].file < parts[b].file : parts[a].offset < parts[b].offset;
  });
  // Tensors whose aligned ranges touch share one read: an official shard
  // stores an expert's six tensors back to back, so that is one pread.
  Layout layout;
  layout.part_offsets.resize(parts.size());
  uint64_t slot_end = 0;
  for (size_t i : order) {
    const FileExtent& p = parts[i];
    const uint64_t begin = AlignDown(p.offset, kDirectIoAlignment);
    const uint64_t end = AlignUp(p.offset + p.bytes, kDirectIoAlignment);
    if (layout.reads.empty() || layout.reads.back().file != p.file ||
        begin > layout.reads.back().offset + layout.reads.back().bytes) {
      layout.reads.push_back({p.file, begin, end - begin, 0, slot_end});
    }
    Read& r = layout.reads.back();
    r.bytes = std::max(r.bytes, end - r.offset);
    r.needed = std::max(r.needed, p.offset + p.bytes - r.offset);
    slot_end = r.slot_offset + r.bytes;
    layout.part_offsets[i] = r.slot_offset + (p.offset - r.offset);
  }
  return layout;
}

uint64_t ExpertCache::LayoutBytes(const Layout& layout) {
  return layout.reads.empty() ? 0 : layout.reads.back().slot_offset + layout.reads.back().bytes;
}

int64_t ExpertCache::SlotBytes(const std::vector<std::vector<FileExtent>>& items) {
  uint64_t most = 0;
  for (const auto& parts : items) most = std::max(most, LayoutBytes(LayOut(parts)));
  return static_cast<int64_t>(most);
}

ExpertCache::ExpertCache(const std::vector<std::string>& paths, const std::vector<std::vector<FileExtent>>& items,
                         int64_t slots, bool direct_io, bool lock_memory)
    : paths_(paths), direct_io_(direct_io) {
  if (slots < 2) throw Error("the expert cache needs at least 2 slots, got " + std::to_string(slots));
  std::vector<bool> used(paths.size(), false);
  for (const auto& parts : items) {
    layouts_.push_back(LayOut(parts));
    slot_bytes_ = std::max(slot_bytes_, static_cast<int64_t>(LayoutBytes(layouts_.back())));
    for (const FileExtent& p : parts) used.at(p.file) = true;
  }
  // Only the files that hold experts are opened, all in the same I/O mode.
  bool direct = direct_io;
  fds_.assign(paths.size(), -1);
  try {
    for (size_t f = 0; f < paths.size(); ++f) {
      if (used[f]) fds_[f] = OpenForReading(paths[f], direct);
    }
    if (direct != direct_io) {  // one file refused O_DIRECT: read them all through the page cache
      for (int& fd : fds_) {
        if (fd >= 0) ::close(fd);
        fd = -1;
      }
      for (size_t f = 0; f < paths.size(); ++f) {
        if (used[f]) fds_[f] = OpenForReading(paths[f], direct);
      }
    }
    direct_io_ = direct;
    memory_bytes_ = static_cast<uint64_t>(slots) * slot_bytes_;
    memory_ = MapWeightMemory(memory_bytes_);
    if (lock_memory && ::mlock(memory_, memory_bytes_) != 0) {
      throw Error("cannot lock " + std::to_string(memory_bytes_) + " bytes of expert cache in RAM (" +
                  std::strerror(errno) + "); raise `ulimit -l` or run without --mlock");
    }
  } catch (...) {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
    if (memory_) ::munmap(memory_, memory_bytes_);
    throw;
  }
  slots_.resize(slots);
  touched_.assign(slots, lock_memory ? 1 : 0);  // mlock has faulted every page in
  evicted_.assign(items.size(), 0);
  slot_of_.assign(items.size(), -1);
  queued_.assign(items.size(), kNotQueued);
  uses_.assign(items.size(), 0);
  reader_ = std::thread([this] {
    LeaveTeamCpu();
    ReaderLoop();
  });
}

ExpertCache::~ExpertCache() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  reader_.join();
  for (int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
  ::munmap(memory_, memory_bytes_);
}

ExpertCache::Victim ExpertCache::FindVictim(bool demand) const {
  int fresh = -1, coldest = -1, latest_hint = -1;
  auto colder = [&](const Slot& a, const Slot& b) {
    const uint32_t ua = uses_[a.item], ub = uses_[b.item];
    return ua != ub ? ua < ub : a.last_use < b.last_use;
  };
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    const Slot& slot = slots_[s];
    if (slot.pins > 0 || slot.state == SlotState::kLoading || (slot.unclaimed && slot.demanded)) continue;
    if (slot.state == SlotState::kEmpty || slot.state == SlotState::kFailed) {
      if (touched_[s]) return {s, false};
      if (fresh < 0) fresh = s;
    } else if (!slot.hinted) {
      if (coldest < 0 || colder(slot, slots_[coldest])) coldest = s;
    } else if (latest_hint < 0 || slot.hinted_at > slots_[latest_hint].hinted_at) {
      latest_hint = s;
    }
  }
  // A caller waits and nothing can be evicted: a fresh slot, whatever it costs.
  const bool forced = demand && coldest < 0;
  if (fresh >= 0 && (forced || FreshSlotPaysOff(fill_costs_))) return {fresh, !forced};
  if (coldest >= 0) return {coldest, false};
  return {demand ? latest_hint : -1, false};
}

double ExpertCache::TouchSlot(int slot) {
  return TouchPages(memory_ + static_cast<uint64_t>(slot) * slot_bytes_, slot_bytes_);
}

void ExpertCache::Load(int slot, int64_t item) {
  uint8_t* base = memory_ + static_cast<uint64_t>(slot) * slot_bytes_;
  for (const Read& r : layouts_[item].reads) {
    const uint64_t n = ReadExactly(fds_[r.file], paths_[r.file], base + r.slot_offset, r.offset, r.bytes, r.needed);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_read += static_cast<int64_t>(n);
  }
}

void ExpertCache::ReaderLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    // The next request still wanted: demand first, then prefetch, in order.
    bool demand = true;
    std::deque<int64_t>* queue = &demand_;
    auto drop_stale = [&](std::deque<int64_t>& q, uint8_t mark) {
      while (!q.empty() && (queued_[q.front()] != mark || slot_of_[q.front()] >= 0)) q.pop_front();
    };
    drop_stale(demand_, kQueuedDemand);
    drop_stale(prefetch_, kQueuedPrefetch);
    if (demand_.empty()) {
      demand = false;
      queue = &prefetch_;
    }
    const Victim chosen = queue->empty() ? Victim{} : FindVictim(demand);
    const int victim = chosen.slot;
    if (victim < 0) {  // nothing to do, or no slot may be given up yet
      work_cv_.wait(lock);
      continue;
    }
    const int64_t item = queue->front();
    queue->pop_front();
    queued_[item] = kNotQueued;
    Slot& slot = slots_[victim];
    if (slot.item >= 0) {
      slot_of_[slot.item] = -1;
      evicted_[slot.item] = 1;
    }
    const bool fresh = !touched_[victim], reread = evicted_[item] != 0;
    touched_[victim] = 1;
    slot = Slot{};
    slot.item = item;
    slot.state = SlotState::kLoading;
    slot.hinted = !demand;
    slot.hinted_at = ++clock_;
    slot.unclaimed = true;
    slot.demanded = demand;
    slot_of_[item] = victim;

    lock.unlock();
    const double touch_seconds = fresh ? TouchSlot(victim) : 0;
    const Clock::time_point start = Clock::now();
    std::string error;
    try {
      Load(victim, item);
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double seconds = SecondsSince(start);
    lock.lock();
    stats_.read_seconds += seconds;
    fill_costs_.read_seconds += seconds;
    fill_costs_.read_bytes += LayoutBytes(layouts_[item]);
    if (reread) fill_costs_.reread_seconds += seconds;
    if (fresh) {
      fill_costs_.touch_seconds += touch_seconds;
      fill_costs_.touch_bytes += slot_bytes_;
      if (chosen.grows) fill_costs_.growth_touch_seconds += touch_seconds;
    }
    slot.state = error.empty() ? SlotState::kReady : SlotState::kFailed;
    slot.error = std::move(error);
    ready_cv_.notify_all();
  }
}

ExpertCache::Pinned ExpertCache::Acquire(int64_t item) {
  if (item < 0 || item >= static_cast<int64_t>(slot_of_.size())) {
    throw Error("expert cache: item " + std::to_string(item) + " does not exist");
  }
  std::unique_lock<std::mutex> lock(mutex_);
  const Clock::time_point start = Clock::now();
  bool waited = false;
  while (true) {
    const int s = slot_of_[item];
    if (s >= 0 && slots_[s].state == SlotState::kReady) {
      Slot& slot = slots_[s];
      ++slot.pins;
      slot.last_use = ++clock_;
      ++uses_[item];
      if (++acquisitions_since_aging_ >= static_cast<int64_t>(uses_.size())) {
        for (uint32_t& uses : uses_) uses /= 2;
        acquisitions_since_aging_ = 0;
      }
      if (slot.unclaimed) {
        ++stats_.misses;
        if (!slot.demanded) ++stats_.prefetched;
      } else {
        ++stats_.hits;
      }
      slot.unclaimed = slot.hinted = false;
      if (waited) stats_.stall_seconds += SecondsSince(start);
      Pinned pinned;
      const uint8_t* base = memory_ + static_cast<uint64_t>(s) * slot_bytes_;
      for (uint64_t offset : layouts_[item].part_offsets) pinned.parts.push_back(base + offset);
      pinned.pin = std::shared_ptr<const void>(base, [this, s](const void*) { Unpin(s); });
      return pinned;
    }
    if (s >= 0 && slots_[s].state == SlotState::kFailed) {
      Slot& slot = slots_[s];
      const std::string error = slot.error;
      slot_of_[item] = -1;
      slot = Slot{};
      ++stats_.misses;
      throw Error(error);
    }
    if (s < 0) {
      if (std::all_of(slots_.begin(), slots_.end(), [](const Slot& slot) { return slot.pins > 0; })) {
        throw Error("expert cache: all " + std::to_string(slots_.size()) +
                    " slots are held by experts in use; raise --mem-budget");
      }
      if (queued_[item] != kQueuedDemand) {
        queued_[item] = kQueuedDemand;
        demand_.push_back(item);
        work_cv_.notify_one();
      }
    }
    waited = true;
    ready_cv_.wait(lock);
  }
}

void ExpertCache::Prefetch(const std::vector<int64_t>& items) {
  bool added = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int64_t item : items) {
      if (item < 0 || item >= static_cast<int64_t>(slot_of_.size())) {
        throw Error("expert cache: item " + std::to_string(item) + " does not exist");
      }
      const int s = slot_of_[item];
      if (s >= 0) {
        // Resident already: keep it until it is used (a read in flight is
        // kept by its own mark once it lands).
        Slot& slot = slots_[s];
        if (slot.state == SlotState::kReady && !slot.hinted) {
          slot.hinted = true;
          slot.hinted_at = ++clock_;
        }
        continue;
      }
      if (queued_[item] != kNotQueued) continue;
      queued_[item] = kQueuedPrefetch;
      prefetch_.push_back(item);
      added = true;
    }
  }
  if (added) work_cv_.notify_one();
}

void ExpertCache::Unpin(int slot) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --slots_[slot].pins;
  }
  work_cv_.notify_one();
}

int64_t ExpertCache::filled_slots() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::count_if(slots_.begin(), slots_.end(), [](const Slot& slot) { return slot.state == SlotState::kReady; });
}

SlotFillCosts ExpertCache::fill_costs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fill_costs_;
}

ExpertCacheStats ExpertCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace dsv4
