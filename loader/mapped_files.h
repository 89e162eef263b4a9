// Which checkpoint file a mapped address belongs to. A shard that shrinks
// after it was mapped (truncated by another process, a network filesystem
// losing it) makes the next access to the lost pages raise SIGBUS; the
// handler installed here ends the process with one line naming the file
// instead of a bare signal. The lookup reads a fixed table without locks or
// allocation, so it is safe inside a signal handler.
#pragma once

#include <cstddef>
#include <string>

namespace dsv4 {

// Called by the owner of each file mapping (SafetensorsFile).
void RegisterMappedFile(const void* base, size_t size, const std::string& path);
void UnregisterMappedFile(const void* base);

// SIGBUS at an address of a registered mapping prints
// "PROGRAM: error: PATH: the file shrank while mapped ..." and exits with
// status 1; any other SIGBUS keeps the default action.
void InstallMappedFileFaultHandler(const char* program);

}  // namespace dsv4
