// An append-only store of one layer's cached rows (compressed KV rows or
// indexer rows) in their encoded form, in pages of a fixed number of rows.
// With a KvSpill, full pages may move to the spill file; reads of spilled
// rows are batched into one pread per run of consecutive rows.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv/kv_codec.h"
#include "engine/kv/kv_spill.h"

namespace dsv4 {

class KvRowStore {
 public:
  static constexpr int64_t kRowsPerPage = 64;

  // spill: null keeps every row in RAM.
  KvRowStore(KvCodec codec, KvSpill* spill);
  KvRowStore(const KvRowStore&) = delete;
  KvRowStore& operator=(const KvRowStore&) = delete;

  const KvCodec& codec() const { return codec_; }
  int64_t size() const { return rows_; }
  int64_t resident_bytes() const;

  void Append(const float* row);
  // Keeps the first `rows` rows (at most size()): speculative rows rolled
  // back. A page that is no longer full returns to RAM.
  void Truncate(int64_t rows);
  // Decodes rows ids[0..n) into out[n][dim], in the given order.
  void Gather(const int32_t* ids, int64_t n, float* out) const;
  // Decodes rows [begin, end) into out[end - begin][dim].
  void GatherRange(int64_t begin, int64_t end, float* out) const;

  // Encoded rows, for saving and restoring sessions.
  void ReadEncoded(int64_t begin, int64_t count, uint8_t* out) const;
  void AppendEncoded(const uint8_t* rows, int64_t count);

  // Moves a full page to the spill file; returns the RAM bytes freed.
  int64_t EvictPage(int64_t page, KvSpill& spill);

 private:
  struct Page {
    std::vector<uint8_t> ram;   // empty once spilled
    int64_t file_offset = -1;
  };
  // Copies the encoded bytes of rows [begin, begin + count) of one page.
  void ReadPageRows(int64_t page, int64_t first, int64_t count, uint8_t* out) const;
  void AppendOne(const uint8_t* encoded);
  // Frees the last page, in RAM or in the spill file.
  void DropLastPage();

  KvCodec codec_;
  KvSpill* spill_;
  int64_t rows_ = 0;
  std::vector<Page> pages_;
};

}  // namespace dsv4
