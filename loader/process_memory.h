// This process's memory as Linux reports it under /proc/self: the peak-RSS
// figures of `dsv4 bench -m` and the weight store's budget tests.
#pragma once

#include <cstdint>
#include <string>

namespace dsv4 {

// A byte field of /proc/self/status ("VmRSS", "VmHWM"), or -1 if absent.
int64_t ProcessStatusBytes(const std::string& field);

// Makes VmHWM start again from the current RSS (Linux >= 4.0); false where
// /proc/self/clear_refs is not writable.
bool ResetPeakRss();

}  // namespace dsv4
