// --threads and --numa: the one thread team of every command that runs kernels.
#pragma once

#include <cxxopts.hpp>

#include "simd/threads.h"

namespace dsv4::cli {

void AddThreadOptions(cxxopts::Options& options);

// Plans and pins the team (simd/threads.h) for --threads and --numa; on a
// machine with more than one NUMA node says on stderr where threads and
// weights go. Call before any weight memory is mapped: the placement applies
// to memory mapped after it.
const TeamPlacement& StartThreadTeam(const cxxopts::ParseResult& args);

}  // namespace dsv4::cli
