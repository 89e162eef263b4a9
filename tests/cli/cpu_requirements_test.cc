// The command line's check for the instruction set the kernels are compiled
// for: the CPU running the tests runs the kernels, so it has every feature;
// a CPU without some is told which.
#include "cli/cpu_requirements.h"

#include <gtest/gtest.h>

namespace dsv4::cli {
namespace {

TEST(CpuRequirements, TheCpuRunningTheKernelsHasEveryFeature) {
  const std::vector<CpuFeature> features = KernelCpuFeatures();
  EXPECT_EQ(features.size(), 15u);
  EXPECT_EQ(MissingCpuFeatures(features), "");
}

TEST(CpuRequirements, NamesWhatIsMissing) {
  EXPECT_EQ(MissingCpuFeatures({{"sse4.2", true}, {"avx2", false}, {"fma", false}, {"bmi2", true}}), "AVX2, FMA");
  EXPECT_EQ(MissingCpuFeatures({{"pclmul", false}}), "PCLMUL");
  EXPECT_EQ(MissingCpuFeatures({}), "");
}

}  // namespace
}  // namespace dsv4::cli
