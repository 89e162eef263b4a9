#include "engine/text/bpe_model.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <memory>

namespace dsv4 {
namespace {

// Per-thread cache of piece -> ids: no locks, bounded memory (2 MiB per
// thread), two-way set associative (the most recent entry of a set in way 0),
// and a miss just recomputes. Most words fit a slot.
constexpr int kCacheSetBits = 14;
constexpr size_t kMaxCachedBytes = 22;
constexpr size_t kMaxCachedIds = 7;

struct CacheSlot {
  uint64_t hash = 0;  // 0: empty
  uint32_t owner = 0;
  uint8_t length = 0;
  uint8_t id_count = 0;
  char bytes[kMaxCachedBytes];
  int32_t ids[kMaxCachedIds];
};
static_assert(sizeof(CacheSlot) == 64);

CacheSlot* ThreadCache() {
  thread_local std::unique_ptr<CacheSlot[]> cache(new CacheSlot[size_t{2} << kCacheSetBits]());
  return cache.get();
}

uint64_t Load64(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, 8);
  return word;
}

// Hash of a piece of at most kMaxCachedBytes, from whole-word loads that may
// overlap (copying it into a zeroed buffer first stalls on store forwarding).
uint64_t HashPiece(std::string_view piece) {
  const char* p = piece.data();
  const size_t n = piece.size();
  uint64_t a, b, c = 0;
  if (n >= 8) {
    a = Load64(p);
    b = Load64(p + n - 8);
    if (n > 16) c = Load64(p + 8);
  } else {
    a = b = 0;
    for (size_t i = 0; i < n; ++i) a = (a << 8) | static_cast<unsigned char>(p[i]);
  }
  uint64_t h = n * 0x9E3779B97F4A7C15ull;
  h ^= a * 0xC2B2AE3D27D4EB4Full;
  h ^= std::rotl(b * 0x165667B19E3779F9ull, 21);
  h ^= std::rotl(c * 0xD6E8FEB86659FD93ull, 42);
  h ^= h >> 31;
  h *= 0x9E3779B97F4A7C15ull;
  h ^= h >> 29;
  return h | 1;
}

struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, or -1
  int32_t next;  // index of the next live symbol, or -1
};

// A merge that applied when pushed; it still applies when popped iff both
// symbols are unchanged, which is checked without another table lookup.
struct Candidate {
  uint32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t left, right;  // their ids when pushed
  // std::push_heap builds a max-heap: "less" means "applied later".
  bool operator<(const Candidate& other) const {
    return rank != other.rank ? rank > other.rank : pos > other.pos;
  }
};

}  // namespace

BpeModel::BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<Merge>& merges,
                   std::unordered_map<std::string, int32_t> whole_words)
    : byte_ids_(byte_ids), whole_words_(std::move(whole_words)) {
  static std::atomic<uint32_t> next_owner{1};
  cache_owner_ = next_owner.fetch_add(1);
  // At most half full keeps probe sequences short.
  const int bits = std::max(4, static_cast<int>(std::bit_width(merges.size() * 2)));
  table_.assign(size_t{1} << bits, MergeSlot{});
  mask_ = table_.size() - 1;
  shift_ = 64 - bits;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const Merge& m = merges[rank];
    const uint64_t pair = (static_cast<uint64_t>(static_cast<uint32_t>(m.left)) << 32) | static_cast<uint32_t>(m.right);
    size_t slot = SlotOf(pair);
    while (table_[slot].pair != kEmpty && table_[slot].pair != pair) slot = (slot + 1) & mask_;
    table_[slot] = {pair, static_cast<uint32_t>(rank)};
    merged_by_rank_.push_back(m.merged);
  }
  byte_pair_rank_.resize(256 * 256);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      uint32_t rank;
      byte_pair_rank_[a << 8 | b] = FindMerge(byte_ids_[a], byte_ids_[b], rank) ? rank : kNoMerge;
    }
  }
}

void BpeModel::EncodePiece(std::string_view piece, std::vector<int32_t>& ids) const {
  if (piece.empty()) return;
  if (piece.size() == 1) {
    ids.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
    return;
  }
  if (!whole_words_.empty()) {
    const auto it = whole_words_.find(std::string(piece));
    if (it != whole_words_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (piece.size() > kMaxCachedBytes) {
    MergeBytes(piece, ids);
    return;
  }
  const uint64_t hash = HashPiece(piece);
  CacheSlot* set = ThreadCache() + 2 * (hash >> (64 - kCacheSetBits));
  for (int way = 0; way < 2; ++way) {
    const CacheSlot& slot = set[way];
    if (slot.hash == hash && slot.owner == cache_owner_ && slot.length == piece.size() &&
        std::memcmp(slot.bytes, piece.data(), piece.size()) == 0) {
      ids.insert(ids.end(), slot.ids, slot.ids + slot.id_count);
      return;
    }
  }
  const size_t first = ids.size();
  MergeBytes(piece, ids);
  const size_t count = ids.size() - first;
  if (count > kMaxCachedIds) return;
  set[1] = set[0];
  CacheSlot& slot = set[0];
  slot.hash = hash;
  slot.owner = cache_owner_;
  slot.length = static_cast<uint8_t>(piece.size());
  slot.id_count = static_cast<uint8_t>(count);
  std::memcpy(slot.bytes, piece.data(), piece.size());
  std::copy(ids.begin() + first, ids.end(), slot.ids);
}

void BpeModel::MergeBytes(std::string_view piece, std::vector<int32_t>& ids) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(piece.size());
  symbols.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = {byte_ids_[static_cast<unsigned char>(piece[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  uint32_t rank;
  auto push_pair = [&](int32_t left) {
    const int32_t right = symbols[left].next;
    if (right >= 0 && FindMerge(symbols[left].id, symbols[right].id, rank)) {
      heap.push_back({rank, left, symbols[left].id, symbols[right].id});
      std::push_heap(heap.begin(), heap.end());
    }
  };
  // The first pairs are all byte pairs: a dense table answers them from L2.
  for (int32_t i = 0; i + 1 < n; ++i) {
    const uint32_t byte_rank = byte_pair_rank_[static_cast<unsigned char>(piece[i]) << 8 |
                                               static_cast<unsigned char>(piece[i + 1])];
    if (byte_rank != kNoMerge) {
      heap.push_back({byte_rank, i, symbols[i].id, symbols[i + 1].id});
      std::push_heap(heap.begin(), heap.end());
    }
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = symbols[top.pos];
    // Skip candidates made stale by earlier merges: the left symbol was
    // absorbed or grew, or its right neighbour changed.
    if (left.id != top.left || left.next < 0 || symbols[left.next].id != top.right) continue;
    Symbol& right = symbols[left.next];
    left.id = merged_by_rank_[top.rank];
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    right.id = -1;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
}

}  // namespace dsv4
