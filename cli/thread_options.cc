#include "cli/thread_options.h"

#include <cstdio>
#include <stdexcept>

#include "loader/error.h"

namespace dsv4::cli {

void AddThreadOptions(cxxopts::Options& options) {
  options.add_options()
      ("threads", "Worker threads (default: OMP_NUM_THREADS if set, else the physical cores --numa uses)",
       cxxopts::value<int>())
      ("numa", kNumaHelp, cxxopts::value<std::string>()->default_value("distribute"));
}

const TeamPlacement& StartThreadTeam(const cxxopts::ParseResult& args) {
  int threads = 0;
  if (args.count("threads")) {
    threads = args["threads"].as<int>();
    if (threads < 1) throw Error("--threads must be >= 1, got " + std::to_string(threads));
  }
  NumaPolicy policy;
  try {
    policy = ParseNumaPolicy(args["numa"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw Error(e.what());
  }
  const TeamPlacement& placement = SetThreadCount(threads, policy);
  if (placement.topology_nodes > 1) {
    std::fprintf(stderr, "%s\n", placement.Summary(Topology::OfThisProcess()).c_str());
  }
  return placement;
}

}  // namespace dsv4::cli
