// dsv4: dispatches to one subcommand; every failure becomes one line on stderr
// and a nonzero exit status.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/command.h"
#include "cli/cpu_requirements.h"
#include "loader/mapped_files.h"
#include "loader/process_memory.h"

namespace dsv4::cli {

std::vector<Command>& Commands() {
  static std::vector<Command> commands;
  return commands;
}

namespace {

void PrintUsage(FILE* out) {
  std::fprintf(out, "usage: dsv4 <command> [options]   (dsv4 <command> --help for its options)\n\ncommands:\n");
  auto commands = Commands();
  std::sort(commands.begin(), commands.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  for (const Command& c : commands) std::fprintf(out, "  %-10s %s\n", c.name.c_str(), c.summary.c_str());
}

}  // namespace
}  // namespace dsv4::cli

int main(int argc, char** argv) {
  using namespace dsv4::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    PrintUsage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : Commands()) {
    if (c.name != argv[1]) continue;
    std::string program = std::string("dsv4 ") + argv[1];
    argv[1] = program.data();
    const std::string missing = MissingCpuFeatures(KernelCpuFeatures());
    if (!missing.empty()) {
      std::fprintf(stderr, "dsv4 %s: error: this CPU lacks %s, which dsv4's kernels need (an x86-64 CPU of Intel's "
                   "Haswell, AMD's Zen or later has them)\n", c.name.c_str(), missing.c_str());
      return 1;
    }
    dsv4::InstallMappedFileFaultHandler(program.c_str());
    dsv4::RetainFreedMemory();
    // Past a file-size limit (ulimit -f), a write fails with EFBIG, which every
    // writer reports like a full disk, instead of the signal killing the process.
    std::signal(SIGXFSZ, SIG_IGN);
    try {
      return c.run(argc - 1, argv + 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dsv4 %s: error: %s\n", c.name.c_str(), e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "dsv4: unknown command \"%s\"\n", argv[1]);
  PrintUsage(stderr);
  return 2;
}
