#include "loader/process_memory.h"

#include <malloc.h>

#include <fstream>

namespace dsv4 {

int64_t ProcessStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;  // kB
  }
  return -1;
}

bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

void RetainFreedMemory() {
  // Every block from the heap (no mmap of its own, which munmap gives back),
  // and no trimming of the heap's top (-1: a threshold of SIZE_MAX).
  ::mallopt(M_MMAP_MAX, 0);
  ::mallopt(M_TRIM_THRESHOLD, -1);
}

void ReleaseFreedMemory() { ::malloc_trim(0); }

}  // namespace dsv4
