// Shared helpers of the fuzz harnesses (docs/fuzzing.md). Each harness
// defines LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang,
// DSV4_FUZZ=ON) or with replay_main.cc (any compiler), which runs it over
// the files of a seed corpus.
//
// The rule every harness enforces: bad input ends in the exception the
// parser documents (dsv4::Error, or a subclass such as api::RequestError).
// Any other exception, a failed invariant, a crash, a sanitizer report, a
// hang or unbounded memory is a finding: Finding() prints it and aborts, so
// libFuzzer saves the input and the replay test fails.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "loader/error.h"

namespace dsv4::fuzz {

[[noreturn]] inline void Finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline void Check(bool condition, const std::string& what) {
  if (!condition) Finding("invariant failed: " + what);
}

// Runs `body`. `Expected` (dsv4::Error unless a harness's entry point
// documents a narrower type) is how bad input ends; every other exception is
// a finding.
template <typename Expected = Error, typename Body>
void Expect(const char* entry_point, Body&& body) {
  try {
    body();
  } catch (const Expected&) {
  } catch (const std::exception& e) {
    Finding(std::string(entry_point) + " threw " + typeid(e).name() + " (not the documented error type): " + e.what());
  } catch (...) {
    Finding(std::string(entry_point) + " threw a non-std exception");
  }
}

inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The directory of the repository's test data (tests/data).
inline std::string TestData(const std::string& relative) { return std::string(DSV4_TEST_DATA) + "/" + relative; }

// An in-memory file with a path (/proc/self/fd/N) for parsers that read
// files: rewritten for each input, never touching the disk.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("dsv4-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) Finding("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  const std::string& Write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) Finding("ftruncate failed");
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) Finding("pwrite failed");
      done += static_cast<size_t>(n);
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace dsv4::fuzz
