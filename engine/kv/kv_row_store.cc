#include "engine/kv/kv_row_store.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>

#include "loader/error.h"

namespace dsv4 {

KvRowStore::KvRowStore(KvCodec codec, KvSpill* spill) : codec_(codec), spill_(spill) {}

int64_t KvRowStore::resident_bytes() const {
  int64_t bytes = 0;
  for (const Page& p : pages_) bytes += p.ram.size();
  return bytes;
}

void KvRowStore::AppendOne(const uint8_t* encoded) {
  const int64_t row_bytes = codec_.bytes_per_row();
  const int64_t slot = rows_ % kRowsPerPage;
  if (slot == 0) {
    pages_.push_back({});
    pages_.back().ram.resize(kRowsPerPage * row_bytes);
    if (spill_) spill_->AddResident(kRowsPerPage * row_bytes);
  }
  std::memcpy(pages_.back().ram.data() + slot * row_bytes, encoded, row_bytes);
  ++rows_;
  if (spill_ && rows_ % kRowsPerPage == 0) spill_->Enqueue(this, static_cast<int64_t>(pages_.size()) - 1);
}

void KvRowStore::Append(const float* row) {
  std::vector<uint8_t> encoded(codec_.bytes_per_row());
  codec_.Encode(row, encoded.data());
  AppendOne(encoded.data());
}

void KvRowStore::AppendEncoded(const uint8_t* rows, int64_t count) {
  for (int64_t i = 0; i < count; ++i) AppendOne(rows + i * codec_.bytes_per_row());
}

void KvRowStore::DropLastPage() {
  const int64_t page = static_cast<int64_t>(pages_.size()) - 1;
  const int64_t bytes = kRowsPerPage * codec_.bytes_per_row();
  if (spill_) {
    spill_->Forget(this, page);
    if (pages_.back().ram.empty()) {
      spill_->Release(pages_.back().file_offset, bytes);
    } else {
      spill_->AddResident(-bytes);
    }
  }
  pages_.pop_back();
}

void KvRowStore::Truncate(int64_t rows) {
  if (rows < 0 || rows > rows_) {
    throw Error("cannot keep " + std::to_string(rows) + " of " + std::to_string(rows_) + " KV rows");
  }
  const int64_t keep_pages = (rows + kRowsPerPage - 1) / kRowsPerPage;
  while (static_cast<int64_t>(pages_.size()) > keep_pages) DropLastPage();
  const bool was_full = rows_ >= keep_pages * kRowsPerPage;
  if (spill_ && keep_pages > 0 && was_full && rows % kRowsPerPage != 0) {
    const int64_t page = keep_pages - 1, bytes = kRowsPerPage * codec_.bytes_per_row();
    spill_->Forget(this, page);
    Page& p = pages_[page];
    if (p.ram.empty()) {  // spilled: read it back, as it was before it filled
      p.ram.resize(bytes);
      spill_->Read(p.file_offset, p.ram.data(), bytes);
      spill_->Release(p.file_offset, bytes);
      p.file_offset = -1;
      spill_->AddResident(bytes);
    }
  }
  rows_ = rows;
}

int64_t KvRowStore::EvictPage(int64_t page, KvSpill& spill) {
  Page& p = pages_[page];
  p.file_offset = spill.Write(p.ram.data(), p.ram.size());
  const int64_t freed = p.ram.size();
  std::vector<uint8_t>().swap(p.ram);
  return freed;
}

void KvRowStore::ReadPageRows(int64_t page, int64_t first, int64_t count, uint8_t* out) const {
  const int64_t row_bytes = codec_.bytes_per_row();
  const Page& p = pages_[page];
  if (!p.ram.empty()) {
    std::memcpy(out, p.ram.data() + first * row_bytes, count * row_bytes);
  } else {
    spill_->Read(p.file_offset + first * row_bytes, out, count * row_bytes);
  }
}

void KvRowStore::ReadEncoded(int64_t begin, int64_t count, uint8_t* out) const {
  const int64_t row_bytes = codec_.bytes_per_row();
  while (count > 0) {
    const int64_t page = begin / kRowsPerPage, first = begin % kRowsPerPage;
    const int64_t run = std::min(count, kRowsPerPage - first);
    ReadPageRows(page, first, run, out);
    out += run * row_bytes;
    begin += run;
    count -= run;
  }
}

void KvRowStore::GatherRange(int64_t begin, int64_t end, float* out) const {
  const int64_t row_bytes = codec_.bytes_per_row(), dim = codec_.dim();
  std::vector<uint8_t> encoded((end - begin) * row_bytes);
  ReadEncoded(begin, end - begin, encoded.data());
  for (int64_t i = 0; i < end - begin; ++i) codec_.Decode(encoded.data() + i * row_bytes, out + i * dim);
}

void KvRowStore::Gather(const int32_t* ids, int64_t n, float* out) const {
  const int64_t row_bytes = codec_.bytes_per_row(), dim = codec_.dim();
  // Visit the ids in ascending order so that consecutive rows of a page are
  // read together, then decode each into its requested slot.
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [ids](int64_t a, int64_t b) { return ids[a] < ids[b]; });
  std::vector<uint8_t> encoded;
  for (int64_t i = 0; i < n;) {
    int64_t j = i + 1;
    const int64_t page = ids[order[i]] / kRowsPerPage;
    while (j < n && ids[order[j]] == ids[order[j - 1]] + 1 && ids[order[j]] / kRowsPerPage == page) ++j;
    const int64_t first = ids[order[i]] % kRowsPerPage, count = ids[order[j - 1]] - ids[order[i]] + 1;
    encoded.resize(count * row_bytes);
    ReadPageRows(page, first, count, encoded.data());
    for (int64_t k = i; k < j; ++k) {
      codec_.Decode(encoded.data() + (ids[order[k]] - ids[order[i]]) * row_bytes, out + order[k] * dim);
    }
    i = j;
  }
}

}  // namespace dsv4
