// The kernels are compiled with Haswell's instruction set as their lowest
// target (CMakeLists.txt: DSV4_KERNEL_FLAGS, -march=haswell -maes): on a CPU
// without it the first kernel would die with SIGILL. The command line checks
// first, in code compiled for plain x86-64, and says what is missing.
#pragma once

#include <string>
#include <vector>

namespace dsv4::cli {

struct CpuFeature {
  const char* name;  // as GCC's __builtin_cpu_supports names it
  bool present;
};

// What -march=haswell -maes lets the compiler use beyond x86-64's baseline
// (SSE2), each probed on this CPU (the operating system's support for the AVX
// registers included).
std::vector<CpuFeature> KernelCpuFeatures();

// The names of the features not present, in upper case and separated by
// ", "; empty when all are.
std::string MissingCpuFeatures(const std::vector<CpuFeature>& features);

}  // namespace dsv4::cli
