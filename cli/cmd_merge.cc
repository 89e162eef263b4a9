// dsv4 merge: the outputs of the shards of one batch (dsv4 batch --shard I/N
// on N machines) joined into one file that answers every input line once.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/arguments.h"
#include "cli/command.h"
#include "engine/batch/batch_merge.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

int RunMerge(int argc, char** argv) {
  cxxopts::Options options("dsv4 merge",
                           "Join the outputs of dsv4 batch --shard 0/N .. N-1/N into one, checking that every input "
                           "line is answered exactly once");
  options.add_options()
      ("input", "The batch input the shards ran over", cxxopts::value<std::string>())
      ("output", "The merged output (records in input order; written whole or not at all)",
       cxxopts::value<std::string>())
      ("parts", "The shards' outputs", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"parts"});
  options.positional_help("PART.jsonl...");
  const auto args = ParseOptions(options, argc, argv);
  if (!args.count("input")) throw Error("--input IN.jsonl is required");
  if (!args.count("output")) throw Error("--output MERGED.jsonl is required");
  if (!args.count("parts")) throw Error("give the outputs of the shards to merge (PART.jsonl...)");
  const std::vector<std::string> parts = args["parts"].as<std::vector<std::string>>();
  const MergeSummary summary = MergeBatchOutputs(args["input"].as<std::string>(), parts, args["output"].as<std::string>());
  std::fprintf(stderr, "merge: %lld answers from %lld shards into %s\n", static_cast<long long>(summary.lines),
               static_cast<long long>(summary.shards), args["output"].as<std::string>().c_str());
  return 0;
}

const RegisterCommand kRegister("merge", "Join the outputs of the shards of one batch", &RunMerge);

}  // namespace
}  // namespace dsv4::cli
