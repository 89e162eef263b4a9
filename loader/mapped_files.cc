#include "loader/mapped_files.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

namespace dsv4 {
namespace {

// A checkpoint has tens of shards; more mappings than this go unnamed.
constexpr int kSlots = 256;
constexpr size_t kPathBytes = 512;

struct Slot {
  std::atomic<const char*> base{nullptr};
  size_t size = 0;
  char path[kPathBytes] = {};
};

Slot g_slots[kSlots];
std::mutex g_register;  // writers only; the handler reads without it
const char* g_program = "dsv4";

void Write(const char* text) {
  size_t left = std::strlen(text);
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<size_t>(n);
  }
}

void OnBusError(int signal, siginfo_t* info, void*) {
  const char* address = static_cast<const char*>(info->si_addr);
  for (const Slot& slot : g_slots) {
    const char* base = slot.base.load(std::memory_order_acquire);
    if (base == nullptr || address < base || address >= base + slot.size) continue;
    Write(g_program);
    Write(": error: ");
    Write(slot.path);
    Write(": the file shrank while it was mapped (truncated or replaced by another process?); "
          "restore it and run again\n");
    ::_exit(1);
  }
  // Not ours: the default action (the signal again, now unhandled).
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

}  // namespace

void RegisterMappedFile(const void* base, size_t size, const std::string& path) {
  std::lock_guard<std::mutex> lock(g_register);
  for (Slot& slot : g_slots) {
    if (slot.base.load(std::memory_order_relaxed) != nullptr) continue;
    slot.size = size;
    std::strncpy(slot.path, path.c_str(), kPathBytes - 1);
    slot.base.store(static_cast<const char*>(base), std::memory_order_release);
    return;
  }
}

void UnregisterMappedFile(const void* base) {
  std::lock_guard<std::mutex> lock(g_register);
  for (Slot& slot : g_slots) {
    if (slot.base.load(std::memory_order_relaxed) == base) slot.base.store(nullptr, std::memory_order_release);
  }
}

void InstallMappedFileFaultHandler(const char* program) {
  g_program = program;
  struct sigaction action {};
  action.sa_sigaction = OnBusError;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGBUS, &action, nullptr);
}

}  // namespace dsv4
