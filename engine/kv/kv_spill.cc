#include "engine/kv/kv_spill.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "engine/kv/kv_row_store.h"
#include "loader/error.h"

namespace dsv4 {

namespace {

// Creates `dir` if needed and an unnamed file in it (mkstemp, then unlink:
// nothing is left behind, whatever ends the process).
int CreateSpillFile(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string path = (std::filesystem::path(dir) / "dsv4-kv-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  if (fd < 0) throw Error("--kv-dir " + dir + ": cannot create a spill file (" + std::strerror(errno) + ")");
  ::unlink(path.c_str());
  return fd;
}

}  // namespace

void KvSpill::CheckDirectory(const std::string& dir) { ::close(CreateSpillFile(dir)); }

int64_t KvSpill::FreeBytes(const std::string& dir) {
  struct statvfs fs {};
  if (::statvfs(dir.c_str(), &fs) != 0) throw Error("--kv-dir " + dir + ": " + std::strerror(errno));
  return static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
}

KvSpill::KvSpill(std::string dir, int64_t ram_budget) : dir_(std::move(dir)), ram_budget_(ram_budget) {}

KvSpill::~KvSpill() {
  if (fd_ >= 0) ::close(fd_);
}

void KvSpill::Open() { fd_ = CreateSpillFile(dir_); }

void KvSpill::Enqueue(KvRowStore* store, int64_t page) { evictable_.emplace_back(store, page); }

void KvSpill::Forget(const KvRowStore* store, int64_t page) {
  for (auto it = evictable_.rbegin(); it != evictable_.rend(); ++it) {
    if (it->first == store && it->second == page) {
      evictable_.erase(std::next(it).base());
      return;
    }
  }
}

void KvSpill::Release(int64_t offset, int64_t bytes) {
  if (offset + bytes == file_size_) file_size_ = offset;
}

void KvSpill::Enforce() {
  while (resident_bytes_ > ram_budget_ && !evictable_.empty()) {
    auto [store, page] = evictable_.front();
    resident_bytes_ -= store->EvictPage(page, *this);
    evictable_.pop_front();
  }
}

int64_t KvSpill::Write(const uint8_t* data, int64_t bytes) {
  if (fd_ < 0) Open();
  const int64_t offset = file_size_;
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pwrite(fd_, data + done, bytes - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error("--kv-dir " + dir_ + ": writing the KV spill file failed (" +
                  std::string(n < 0 ? std::strerror(errno) : "no space left") + ")");
    }
    done += n;
  }
  file_size_ += bytes;
  return offset;
}

void KvSpill::Read(int64_t offset, uint8_t* out, int64_t bytes) const {
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd_, out + done, bytes - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw Error("--kv-dir " + dir_ + ": reading the KV spill file failed (" +
                  std::string(n < 0 ? std::strerror(errno) : "short read") + ")");
    }
    done += n;
  }
}

}  // namespace dsv4
