// Code compiled for one SIMD target (AVX2, AVX-512, ...) must run only after
// Highway's dispatch has chosen it: run before main, by a static object's
// initializer, it is an illegal instruction on every CPU without that target,
// whatever the command. The CPU running the tests has some targets and lacks
// others, so the test reads the binary instead of running it: no start-up
// function of dsv4 calls into a target's namespace or runs an AVX instruction
// (the baseline is x86-64 with SSE2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Function {
  std::string name;
  std::vector<std::string> lines;
};

// The start-up functions of `binary` (GCC's `_GLOBAL__sub_I_<file>` and the
// `__static_initialization_and_destruction_0` they call), disassembled.
std::vector<Function> StartUpFunctions(const std::string& binary) {
  const std::string command = "objdump -d -C --no-show-raw-insn " + testing::ShellQuote(binary) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {};
  const std::regex header(R"(^[0-9a-f]+ <(.*)>:$)");
  std::vector<Function> functions;
  bool inside = false;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
    std::string line(buffer);
    if (!line.empty() && line.back() == '\n') line.pop_back();
    std::smatch match;
    if (std::regex_match(line, match, header)) {
      const std::string name = match[1];
      inside = name.rfind("_GLOBAL__sub_I", 0) == 0 || name.find("__static_initialization_and_destruction") == 0;
      if (inside) functions.push_back({name, {}});
    } else if (inside && !line.empty()) {
      functions.back().lines.push_back(line);
    }
  }
  pclose(pipe);
  return functions;
}

TEST(StartUp, RunsNoCodeOfAnySimdTarget) {
  const std::vector<Function> functions = StartUpFunctions(DSV4_CLI_BINARY);
  ASSERT_FALSE(functions.empty()) << "objdump found no start-up function in " << DSV4_CLI_BINARY;
  // "  852d9:\tvmovaps 0x293fff(%rip),%ymm0": a VEX or EVEX instruction (AVX
  // and later: its mnemonic starts with v), or a call or jump into a target.
  const std::regex target_code(R"(^\s*[0-9a-f]+:\s+(v[a-z0-9]+\s|(call|jmp)\s.*<dsv4::N_[A-Z0-9_]+::))");
  for (const Function& function : functions) {
    for (const std::string& line : function.lines) {
      EXPECT_FALSE(std::regex_search(line, target_code)) << function.name << ": " << line;
    }
  }
}

}  // namespace
}  // namespace dsv4
