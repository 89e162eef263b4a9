// dsv4 batch: an OpenAI Batch API JSONL file answered overnight, resumable
// after a kill, shardable across machines (engine/batch/batch_job.h). The
// output is the file given to --output; stderr carries progress.
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "cli/sampling_options.h"
#include "engine/api/stable_hash.h"
#include "engine/batch/batch_job.h"
#include "engine/model/session_file.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

// The request defaults as the flags set them: part of the output's
// fingerprint, since the answers depend on them.
nlohmann::ordered_json DefaultsFingerprint(const api::RequestDefaults& d) {
  const SamplingParams& s = d.sampling;
  return {{"mode", ReasoningModeName(d.mode)},       {"temperature", s.temperature},
          {"top_p", s.top_p},                        {"top_k", s.top_k},
          {"min_p", s.min_p},                        {"presence_penalty", s.presence_penalty},
          {"frequency_penalty", s.frequency_penalty}, {"stop", s.stop},
          {"max_tokens", s.max_tokens},              {"reasoning_budget", d.reasoning_budget}};
}

int RunBatch(int argc, char** argv) {
  cxxopts::Options options("dsv4 batch",
                           "Answer an OpenAI Batch API JSONL file (/v1/chat/completions, /v1/completions); an "
                           "existing --output is resumed");
  AddModelOptions(options);
  options.add_options()
      ("input", "Requests, one JSON object a line: {\"custom_id\", \"method\", \"url\", \"body\"}",
       cxxopts::value<std::string>())
      ("output", "Answers, one line per input line, in completion order; resumed if it exists",
       cxxopts::value<std::string>())
      ("fresh", "Start --output over instead of resuming it")
      ("shard", "I/N: only lines k with k mod N = I (0-based), for N machines on one file",
       cxxopts::value<std::string>()->default_value("0/1"))
      ("window", "Lines read and reordered at a time, so shared prompt prefixes are computed once",
       cxxopts::value<int64_t>()->default_value("4096"))
      ("mode", "Reasoning mode of requests that do not choose: chat | think | think-max",
       cxxopts::value<std::string>()->default_value("think"))
      ("model-name", "The \"model\" reported in every response",
       cxxopts::value<std::string>()->default_value("deepseek-v4-flash"))
      ("progress", "Seconds between progress lines on stderr", cxxopts::value<double>()->default_value("10"));
  AddSamplingOptions(options, 32768);
  AddSchedulerOptions(options, 16);
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  if (!args.count("input")) throw Error("--input IN.jsonl is required");
  if (!args.count("output")) throw Error("--output OUT.jsonl is required");
  RefuseSessionOptions(args, "batch", "requests that share a prefix reuse it through the prefix cache");

  BatchJobOptions job;
  job.input = args["input"].as<std::string>();
  job.output = args["output"].as<std::string>();
  job.fresh = args.count("fresh") > 0;
  job.shard = ParseShard(args["shard"].as<std::string>());
  job.window = args["window"].as<int64_t>();
  if (job.window < 1) throw Error("--window must be >= 1");
  job.model_name = args["model-name"].as<std::string>();
  job.progress_seconds = args["progress"].as<double>();
  if (!(job.progress_seconds > 0)) throw Error("--progress must be > 0");
  // Unlike run and chat, no random seed: every shard and every resumed run
  // must seed a request the same way.
  job.seed = args.count("seed") ? args["seed"].as<uint64_t>() : 0;
  api::RequestDefaults& defaults = job.defaults;
  defaults.mode = ParseReasoningMode(args["mode"].as<std::string>());
  defaults.sampling = SamplingFromArgs(args, std::numeric_limits<int64_t>::max());
  defaults.reasoning_budget = ReasoningBudgetFromArgs(args);
  if (!std::filesystem::exists(job.input)) throw Error(job.input + ": not found (--input)");

  const Tokenizer tokenizer = LoadTokenizer(args, ConfigFromArgs(args));  // before the weights: a bad one fails at once
  const LoadedModel loaded = LoadModel(args, WorkloadFromArgs(args));
  const Model& model = loaded.model();
  defaults.context_tokens = loaded.plan.context_tokens;
  job.scheduler = SchedulerOptionsFromArgs(args, loaded);
  job.fingerprint = {{"model", api::Hex64(ModelIdentity(loaded.checkpoint()))},
                     {"numerics", NumericsName(model.numerics())},
                     {"defaults", DefaultsFingerprint(defaults)}};
  const BatchSummary summary = RunBatchJob(model, tokenizer, job, stderr);
  return summary.failed > 0 ? 1 : 0;
}

const RegisterCommand kRegister("batch", "Answer a file of OpenAI-format requests, resumably", &RunBatch);

}  // namespace
}  // namespace dsv4::cli
