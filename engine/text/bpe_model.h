// Byte-level BPE: a pre-tokenized piece starts as one symbol per byte and
// merges apply by rank, lowest first, leftmost first among equal ranks (the
// order of the Hugging Face library's merge heap). Results for short pieces
// are cached per thread, since text repeats its words.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsv4 {

class BpeModel {
 public:
  struct Merge {
    int32_t left, right, merged;  // token ids
  };

  // `byte_ids[b]`: the token of byte b. `merges` in rank order; when a pair
  // appears twice the later rank wins, as in the Hugging Face library.
  // `whole_words`: when not empty, a piece that is itself a vocabulary entry
  // (key: its bytes) is that token without merging (tokenizer.json's
  // "ignore_merges": true).
  BpeModel(const std::array<int32_t, 256>& byte_ids, const std::vector<Merge>& merges,
           std::unordered_map<std::string, int32_t> whole_words);

  // Appends the ids of one pre-tokenized piece (raw bytes). Thread-safe.
  void EncodePiece(std::string_view piece, std::vector<int32_t>& ids) const;

 private:
  struct MergeSlot {
    uint64_t pair = kEmpty;  // left << 32 | right
    uint32_t rank = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  // Rank of merging (left, right); false when no merge applies.
  bool FindMerge(int32_t left, int32_t right, uint32_t& rank) const {
    const uint64_t pair = (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    for (size_t slot = SlotOf(pair);; slot = (slot + 1) & mask_) {
      const MergeSlot& entry = table_[slot];
      if (entry.pair == pair) {
        rank = entry.rank;
        return true;
      }
      if (entry.pair == kEmpty) return false;
    }
  }
  size_t SlotOf(uint64_t pair) const { return static_cast<size_t>((pair * 0x9E3779B97F4A7C15ull) >> shift_); }
  void MergeBytes(std::string_view piece, std::vector<int32_t>& ids) const;

  std::array<int32_t, 256> byte_ids_;
  std::vector<MergeSlot> table_;  // open addressing, linear probing
  std::vector<int32_t> merged_by_rank_;  // the token each merge makes
  static constexpr uint32_t kNoMerge = ~uint32_t{0};
  std::vector<uint32_t> byte_pair_rank_;  // [a << 8 | b]: rank of merging bytes a and b, or kNoMerge
  size_t mask_ = 0;
  int shift_ = 0;
  std::unordered_map<std::string, int32_t> whole_words_;
  uint32_t cache_owner_;  // tells this model's entries apart in the per-thread caches
};

}  // namespace dsv4
