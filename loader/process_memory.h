// This process's memory as Linux reports it under /proc/self (the peak-RSS
// figures of `dsv4 bench -m` and the weight store's budget tests), and how
// the memory it frees is kept for its next allocations.
#pragma once

#include <cstdint>
#include <string>

namespace dsv4 {

// A byte field of /proc/self/status ("VmRSS", "VmHWM"), or -1 if absent.
int64_t ProcessStatusBytes(const std::string& field);

// Makes VmHWM start again from the current RSS (Linux >= 4.0); false where
// /proc/self/clear_refs is not writable.
bool ResetPeakRss();

// From now on, memory that malloc's callers free stays in the process for
// the next allocation, instead of going back to the kernel (by default glibc
// maps every block above a threshold, 128 KiB rising to at most 32 MiB, on
// its own and unmaps it at free, and trims the heap's free top). A forward
// pass allocates and frees its scratch (activations of a 512-row prefill
// chunk: tens of MiB per buffer) in every layer; given back, each byte is
// faulted in and zeroed by the kernel again on the next call, which cost up to a
// third of prefill's time on a 2-vCPU VM. The peak is the same: the memory
// plan reserves the working memory of a chunk either way.
void RetainFreedMemory();

// Gives the free memory kept above back to the kernel: after a one-off
// buffer larger than any working set (a bandwidth probe).
void ReleaseFreedMemory();

}  // namespace dsv4
