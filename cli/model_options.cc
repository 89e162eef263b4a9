#include "cli/model_options.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "cli/arguments.h"
#include "cli/thread_options.h"
#include "engine/kv/kv_spill.h"
#include "engine/model/numerics.h"
#include "engine/model/session_file.h"
#include "loader/error.h"
#include "simd/matmul.h"

namespace dsv4::cli {

void AddModelOptions(cxxopts::Options& options) {
  AddThreadOptions(options);
  options.add_options()
      ("m,model", "Model directory (Hugging Face layout)", cxxopts::value<std::string>())
      ("numerics", kNumericsHelp, cxxopts::value<std::string>()->default_value("default"))
      ("chunk", "Token rows per forward call: prefill chunks (bounds activation memory; 0 = a whole prompt at once)",
       cxxopts::value<int64_t>()->default_value("512"))
      ("mem-budget", "Resident weight bytes (dense + expert cache), e.g. 40G, routed experts beyond it paged; auto: "
       "planned from the memory this process may use (dsv4 plan shows it)",
       cxxopts::value<std::string>()->default_value("auto"))
      ("ctx-size", "Tokens per sequence, prompt and output (0: the model's context)",
       cxxopts::value<int64_t>()->default_value("0"))
      ("mlock", "Lock the resident weights in RAM")
      ("matmul", "simd | reference: Highway kernels, or the scalar reference's summation order (docs/performance.md)",
       cxxopts::value<std::string>()->default_value("simd"))
      ("kv-dir", "Directory for the KV spill file", cxxopts::value<std::string>())
      ("kv-ram-budget", "Compressed KV bytes per sequence kept in RAM before spilling to --kv-dir (e.g. 2G); auto: "
       "a share of the memory plan's KV pool", cxxopts::value<std::string>()->default_value("auto"))
      ("save-session", "Save the sequence state at the end to FILE", cxxopts::value<std::string>())
      ("load-session", "Continue the sequence saved in FILE", cxxopts::value<std::string>())
      ("session-dir", "Resume from the longest saved prompt prefix in DIR and save there", cxxopts::value<std::string>());
}

namespace {

// A byte count, or -1 for "auto".
int64_t AutoOrBytes(const cxxopts::ParseResult& args, const std::string& option) {
  const std::string text = args[option].as<std::string>();
  return text == "auto" ? -1 : ParseBytes(text, "--" + option);
}

}  // namespace

MemoryPlan PlanFromArgs(const cxxopts::ParseResult& args, const Checkpoint& checkpoint, const Workload& workload) {
  if (args.count("kv-ram-budget") && !args.count("kv-dir")) {
    throw Error("--kv-ram-budget needs --kv-dir (where spilled rows go)");
  }
  const Numerics numerics = ParseNumerics(args["numerics"].as<std::string>());
  CheckNumericsSupported(numerics);
  MemoryPlanRequest request;
  request.model = checkpoint.dir();
  request.mem_budget = AutoOrBytes(args, "mem-budget");
  request.kv_ram_budget = AutoOrBytes(args, "kv-ram-budget");
  request.kv_spill = args.count("kv-dir") > 0;
  request.parallel = workload.parallel;
  request.context_tokens = args["ctx-size"].as<int64_t>();
  if (request.context_tokens < 0) throw Error("--ctx-size must be >= 0");
  request.chunk = args["chunk"].as<int64_t>();
  request.prefix_cache_bytes = workload.prefix_cache_bytes;
  request.longest_prompt = workload.longest_prompt;
  const ModelConfig& config = checkpoint.config();
  KvOptions kv;
  kv.spill_dir = request.kv_spill ? args["kv-dir"].as<std::string>() : "";
  return PlanMemory(ReadMemoryLimits(), WeightStore::Measure(checkpoint, workload.speculative), config,
                    SequenceState::Size(config, numerics, kv), request);
}

namespace {

std::string ModelDirFromArgs(const cxxopts::ParseResult& args) {
  if (!args.count("model")) throw Error("-m/--model DIR is required");
  return args["model"].as<std::string>();
}

}  // namespace

ModelConfig ConfigFromArgs(const cxxopts::ParseResult& args) { return Checkpoint::ReadConfig(ModelDirFromArgs(args)); }

void SetMatMulKernelsFromArgs(const cxxopts::ParseResult& args) {
  try {
    SetMatMulKernels(ParseMatMulKernels(args["matmul"].as<std::string>()));
  } catch (const std::invalid_argument& e) {
    throw Error(e.what());
  }
}

LoadedModel LoadModel(const cxxopts::ParseResult& args, const Workload& workload) {
  const std::string dir = ModelDirFromArgs(args);
  // Before any weight memory is mapped: the team's placement decides where it goes.
  StartThreadTeam(args);
  SetMatMulKernelsFromArgs(args);
  LoadedModel loaded;
  loaded.chunk = args["chunk"].as<int64_t>();
  if (loaded.chunk < 0) throw Error("--chunk must be >= 0");
  if (args.count("kv-dir")) {
    loaded.kv.spill_dir = args["kv-dir"].as<std::string>();
    KvSpill::CheckDirectory(loaded.kv.spill_dir);
  }
  if (args.count("load-session") && args.count("session-dir")) {
    throw Error("--load-session and --session-dir exclude each other");
  }
  const Numerics numerics = ParseNumerics(args["numerics"].as<std::string>());
  CheckNumericsSupported(numerics);
  const auto start = std::chrono::steady_clock::now();
  auto checkpoint = std::make_unique<Checkpoint>(dir);
  loaded.plan = PlanFromArgs(args, *checkpoint, workload);
  if (!loaded.kv.spill_dir.empty()) loaded.kv.ram_budget = loaded.plan.kv_ram_per_sequence;
  std::fprintf(stderr, "%s\n", loaded.plan.Summary().c_str());
  WeightStoreOptions store_options;
  store_options.mem_budget = loaded.plan.weight_budget;
  store_options.lock_memory = args.count("mlock") > 0;
  store_options.mtp_resident = workload.speculative;
  loaded.stored = LoadStoredModel(std::move(checkpoint), numerics, store_options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "loaded %s: %lld layers, vocab %lld, numerics %s (%.2f s)\n", dir.c_str(),
               static_cast<long long>(loaded.checkpoint().config().num_hidden_layers),
               static_cast<long long>(loaded.checkpoint().config().vocab_size), NumericsName(numerics), seconds);
  return loaded;
}

SchedulerOptions PlannedSchedulerOptions(const LoadedModel& loaded) {
  SchedulerOptions options;
  options.step_tokens = loaded.chunk > 0 ? loaded.chunk : std::numeric_limits<int64_t>::max();
  options.kv = loaded.kv;
  options.context_tokens = loaded.plan.context_tokens;
  options.kv_ram_pool = loaded.plan.kv_ram_pool;
  if (!loaded.kv.spill_dir.empty()) options.kv_disk_pool = KvSpill::FreeBytes(loaded.kv.spill_dir);
  return options;
}

SessionSequence::SessionSequence(const cxxopts::ParseResult& args, const LoadedModel& loaded,
                                 std::vector<int32_t>& prompt)
    : runner_(loaded.model(), loaded.chunk, loaded.kv) {
  if (args.count("save-session")) save_path_ = args["save-session"].as<std::string>();
  if (args.count("session-dir")) session_dir_ = args["session-dir"].as<std::string>();
  if (args.count("load-session") || args.count("session-dir") || args.count("save-session")) {
    identity_ = ModelIdentity(loaded.checkpoint());
  }
  if (args.count("load-session")) {
    const std::string path = args["load-session"].as<std::string>();
    runner_.Load(path, identity_);
    std::fprintf(stderr, "session %s: %lld tokens restored\n", path.c_str(),
                 static_cast<long long>(runner_.length()));
  } else if (!session_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(session_dir_, ec);
    int64_t matched = 0;
    const std::string path =
        FindPrefixSession(session_dir_, prompt, identity_, loaded.model().numerics(), &matched);
    if (!path.empty()) {
      runner_.Load(path, identity_);
      prompt.erase(prompt.begin(), prompt.begin() + matched);
      std::fprintf(stderr, "session-dir: reused a %lld-token prefix (%s)\n", static_cast<long long>(matched),
                   path.c_str());
    }
  }
}

void SessionSequence::Finish() {
  if (!save_path_.empty()) runner_.Save(save_path_, identity_);
  if (!session_dir_.empty() && runner_.length() > 0) {
    runner_.Save(PrefixSessionPath(session_dir_, runner_.tokens()), identity_);
  }
}

}  // namespace dsv4::cli

namespace dsv4::cli {

void RefuseSessionOptions(const cxxopts::ParseResult& args, const std::string& command, const std::string& why) {
  for (const char* option : {"save-session", "load-session", "session-dir"}) {
    if (args.count(option)) throw Error(std::string("--") + option + " is not for " + command + " (" + why + ")");
  }
}

Tokenizer LoadTokenizer(const cxxopts::ParseResult& args, const ModelConfig& config) {
  const std::string path = (std::filesystem::path(ModelDirFromArgs(args)) / "tokenizer.json").string();
  if (!std::filesystem::exists(path)) throw Error(path + ": not found (text input needs the model's tokenizer)");
  Tokenizer tokenizer = Tokenizer::FromFile(path);
  if (tokenizer.VocabSize() > config.vocab_size) {
    throw Error(path + ": " + std::to_string(tokenizer.VocabSize()) + " tokens, more than the model's vocab_size " +
                std::to_string(config.vocab_size));
  }
  return tokenizer;
}

SessionStart::SessionStart(const cxxopts::ParseResult& args, const LoadedModel& loaded, GenerationRequest& request) {
  if (args.count("save-session")) save_path_ = args["save-session"].as<std::string>();
  if (args.count("session-dir")) session_dir_ = args["session-dir"].as<std::string>();
  if (!args.count("load-session") && session_dir_.empty() && save_path_.empty()) return;
  identity_ = ModelIdentity(loaded.checkpoint());
  request.return_state = !save_path_.empty() || !session_dir_.empty();
  std::string path;
  if (args.count("load-session")) {
    path = args["load-session"].as<std::string>();
  } else if (!session_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(session_dir_, ec);
    int64_t matched = 0;
    path = FindPrefixSession(session_dir_, request.prompt, identity_, loaded.model().numerics(), &matched);
  }
  if (path.empty()) return;
  auto state = std::make_shared<SequenceState>(loaded.model().config(), loaded.model().numerics(), loaded.kv);
  SessionContents contents = LoadSession(path, *state, identity_);
  if (args.count("load-session")) {
    request.prompt.insert(request.prompt.begin(), contents.tokens.begin(), contents.tokens.end());
    std::fprintf(stderr, "session %s: %lld tokens restored\n", path.c_str(),
                 static_cast<long long>(contents.tokens.size()));
  } else {
    std::fprintf(stderr, "session-dir: reused a %lld-token prefix (%s)\n",
                 static_cast<long long>(contents.tokens.size()), path.c_str());
  }
  if (request.prompt.empty()) throw Error(path + ": the session holds no tokens to continue from");
  request.start_state = std::move(state);
  request.start_logits = std::move(contents.last_logits);
}

void SessionStart::Save(const GenerationUpdate& last) const {
  if (save_path_.empty() && session_dir_.empty()) return;
  if (!last.final_state) throw Error("the final state was lost (" + last.error + "); no session was saved");
  const SessionContents contents{last.all_tokens, last.final_logits};
  if (!save_path_.empty()) SaveSession(save_path_, *last.final_state, contents, identity_);
  if (!session_dir_.empty()) SaveSession(PrefixSessionPath(session_dir_, last.all_tokens), *last.final_state, contents, identity_);
}

}  // namespace dsv4::cli
