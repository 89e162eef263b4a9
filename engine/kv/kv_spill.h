// The RAM budget of a sequence's compressed KV rows and the file they spill
// to. Row stores register full pages here; when resident bytes exceed the
// budget, the oldest pages move to a file under the spill directory.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace dsv4 {

class KvRowStore;

class KvSpill {
 public:
  // The file is created on first spill, in `dir`, and unlinked at once so
  // that nothing is left behind however the process ends.
  KvSpill(std::string dir, int64_t ram_budget);
  // Throws dsv4::Error naming --kv-dir when no spill file can be created in
  // `dir` (created if missing): checked when the option is given, not at the
  // first spill, hours later.
  static void CheckDirectory(const std::string& dir);
  // Bytes free to an unprivileged writer on the filesystem of `dir`.
  static int64_t FreeBytes(const std::string& dir);
  ~KvSpill();
  KvSpill(const KvSpill&) = delete;
  KvSpill& operator=(const KvSpill&) = delete;

  int64_t ram_budget() const { return ram_budget_; }
  int64_t resident_bytes() const { return resident_bytes_; }
  int64_t spilled_bytes() const { return file_size_; }

  void AddResident(int64_t bytes) { resident_bytes_ += bytes; }
  // A full page of `store` that may be evicted, oldest first.
  void Enqueue(KvRowStore* store, int64_t page);
  // The page is no longer full (rows were rolled back): not evictable.
  void Forget(const KvRowStore* store, int64_t page);
  // A spilled page was dropped; its bytes are reused when they end the file.
  void Release(int64_t offset, int64_t bytes);
  // Evicts pages until the resident bytes fit the budget. Throws dsv4::Error
  // if the file cannot be written (disk full); pages stay in RAM then, so
  // the sequence remains consistent.
  void Enforce();

  int64_t Write(const uint8_t* data, int64_t bytes);  // returns the file offset
  void Read(int64_t offset, uint8_t* out, int64_t bytes) const;

 private:
  void Open();

  std::string dir_;
  int64_t ram_budget_;
  int64_t resident_bytes_ = 0;
  int64_t file_size_ = 0;
  int fd_ = -1;
  std::deque<std::pair<KvRowStore*, int64_t>> evictable_;
};

}  // namespace dsv4
