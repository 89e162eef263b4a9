// dsv4 inspect: what a checkpoint or config holds and what it will cost to run.
#include <cstdio>
#include <iostream>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "loader/checkpoint.h"
#include "loader/error.h"
#include "loader/model_summary.h"

namespace dsv4::cli {
namespace {

int RunInspect(int argc, char** argv) {
  cxxopts::Options options("dsv4 inspect",
                           "Config summary, layer schedule, tensors and bytes by dtype, weight bytes per decoded "
                           "token, KV cache size, problems found.");
  options.add_options()
      ("m,model", "Checkpoint directory", cxxopts::value<std::string>())
      ("config", "A config.json alone (tensors from the schema)", cxxopts::value<std::string>())
      ("json", "Print one JSON object on stdout");
  const auto args = ParseOptions(options, argc, argv);
  if (args.count("model") == args.count("config")) throw Error("give exactly one of -m DIR and --config FILE");
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");

  ModelSummary summary;
  if (args.count("model")) {
    const Checkpoint checkpoint(args["model"].as<std::string>());
    summary = SummarizeCheckpoint(checkpoint);
  } else {
    const std::string path = args["config"].as<std::string>();
    summary = SummarizeConfig(ModelConfig::FromFile(path), path);
  }
  if (args.count("json")) {
    std::cout << SummaryToJson(summary).dump(2) << std::endl;
  } else {
    std::cout << SummaryToText(summary) << std::flush;
  }
  return 0;
}

RegisterCommand kRegister("inspect", "summarise a checkpoint or config: schedule, bytes, KV size, problems",
                          &RunInspect);

}  // namespace
}  // namespace dsv4::cli
