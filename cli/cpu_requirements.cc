#include "cli/cpu_requirements.h"

#include <cctype>

namespace dsv4::cli {

std::vector<CpuFeature> KernelCpuFeatures() {
  __builtin_cpu_init();
  // __builtin_cpu_supports takes a string literal only.
  return {{"sse3", __builtin_cpu_supports("sse3") != 0},     {"ssse3", __builtin_cpu_supports("ssse3") != 0},
          {"sse4.1", __builtin_cpu_supports("sse4.1") != 0}, {"sse4.2", __builtin_cpu_supports("sse4.2") != 0},
          {"popcnt", __builtin_cpu_supports("popcnt") != 0}, {"avx", __builtin_cpu_supports("avx") != 0},
          {"avx2", __builtin_cpu_supports("avx2") != 0},     {"fma", __builtin_cpu_supports("fma") != 0},
          {"f16c", __builtin_cpu_supports("f16c") != 0},     {"bmi", __builtin_cpu_supports("bmi") != 0},
          {"bmi2", __builtin_cpu_supports("bmi2") != 0},     {"lzcnt", __builtin_cpu_supports("lzcnt") != 0},
          {"movbe", __builtin_cpu_supports("movbe") != 0},   {"aes", __builtin_cpu_supports("aes") != 0},
          {"pclmul", __builtin_cpu_supports("pclmul") != 0}};
}

std::string MissingCpuFeatures(const std::vector<CpuFeature>& features) {
  std::string missing;
  for (const CpuFeature& feature : features) {
    if (feature.present) continue;
    if (!missing.empty()) missing += ", ";
    for (const char* c = feature.name; *c != '\0'; ++c) missing += static_cast<char>(std::toupper(*c));
  }
  return missing;
}

}  // namespace dsv4::cli
