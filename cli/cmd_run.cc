// dsv4 run: one generation, from text (rendered with the official chat
// encoding and streamed back as text) or from token ids, through the runtime
// scheduler; a summary of the speed goes to stderr.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <limits>
#include <optional>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "cli/sampling_options.h"
#include "engine/model/session_file.h"
#include "engine/runtime/scheduler.h"
#include "engine/structured/output_constraint.h"
#include "engine/text/chat_format.h"
#include "engine/text/python_json.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// Prints what arrives: text with the reasoning apart from the answer, or
// token ids.
class OutputPrinter {
 public:
  OutputPrinter(bool text, bool reasoning) : text_(text), in_reasoning_(reasoning) {
    if (text_ && in_reasoning_) Print("--- reasoning ---\n");
  }
  void Update(const GenerationUpdate& u) {
    if (!text_) {
      for (const Sampled& s : u.tokens) {
        ids_ += (ids_.empty() ? "" : ",") + std::to_string(s.token);
      }
      return;
    }
    Print(u.reasoning);
    if (in_reasoning_ && (!u.content.empty() || u.reasoning_ended)) {
      Print("\n--- answer ---\n");
      in_reasoning_ = false;
    }
    Print(u.content);
  }
  void Finish() { Print(text_ ? "\n" : ids_ + "\n"); }

 private:
  bool text_;
  bool in_reasoning_;
  std::string ids_;
};

// --json / --json-schema FILE as an output spec; nothing without them.
std::optional<OutputSpec> OutputSpecFromArgs(const cxxopts::ParseResult& args) {
  if (args.count("json") && args.count("json-schema")) throw Error("--json and --json-schema exclude each other");
  if (!args.count("json") && !args.count("json-schema")) return std::nullopt;
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonObject;
  if (args.count("json-schema")) {
    const std::string path = args["json-schema"].as<std::string>();
    std::ifstream in(path);
    if (!in) throw Error("--json-schema: cannot read " + path);
    try {
      spec.schema = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error("--json-schema: " + path + " is not valid JSON: " + e.what());
    }
    // The schema compiler recurses once per level (python_json.h).
    if (JsonDepth(spec.schema) > kMaxJsonDepth) {
      throw Error("--json-schema: " + path + " nests JSON more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    }
    spec.format = OutputSpec::Format::kJsonSchema;
  }
  return spec;
}

// The response_format object the system message shows the model.
nlohmann::ordered_json ResponseFormat(const OutputSpec& spec) {
  if (spec.format == OutputSpec::Format::kJsonObject) return {{"type", "json_object"}};
  return {{"type", "json_schema"}, {"json_schema", {{"name", "schema"}, {"schema", spec.schema}}}};
}

int RunRun(int argc, char** argv) {
  cxxopts::Options options("dsv4 run", "Generate from text or token ids");
  AddModelOptions(options);
  AddSamplingOptions(options, 64);
  AddSpeculativeOption(options);
  options.add_options()
      ("p,prompt", "Prompt text (rendered with the official chat encoding)", cxxopts::value<std::string>())
      ("system", "System prompt (with -p)", cxxopts::value<std::string>())
      ("mode", "Reasoning mode with -p: chat | think | think-max", cxxopts::value<std::string>()->default_value("chat"))
      ("prompt-ids", "Prompt token ids: 1,2,3 or @FILE (printed back as ids)", cxxopts::value<std::string>())
      ("json", "With -p: the answer is one JSON object (constrained decoding)")
      ("json-schema", "With -p: the answer is JSON valid against the JSON Schema in FILE", cxxopts::value<std::string>());
  auto args = ParseOptions(options, argc, argv);
  if (args.count("prompt") && args.count("prompt-ids")) throw Error("-p and --prompt-ids exclude each other");
  if (!args.count("prompt") && !args.count("prompt-ids") && !args.count("load-session")) {
    throw Error("give -p TEXT or --prompt-ids IDS (or --load-session to continue a saved sequence)");
  }
  std::vector<int32_t> prompt;
  if (args.count("prompt-ids")) {
    prompt = ParseIds(args["prompt-ids"].as<std::string>(), "--prompt-ids");
    if (prompt.empty() && !args.count("load-session")) {
      throw Error("--prompt-ids: no token ids (an empty prompt has nothing to continue; give ids or --load-session)");
    }
  }
  const ReasoningMode mode = ParseReasoningMode(args["mode"].as<std::string>());
  const std::optional<OutputSpec> output = OutputSpecFromArgs(args);  // a bad schema file fails before the load
  if (output && !args.count("prompt")) throw Error("--json and --json-schema need text output (-p)");

  // The chat text of -p, encoded once the model's tokenizer is loaded.
  std::optional<std::string> rendered;
  if (args.count("prompt")) {
    std::optional<std::string_view> system;
    if (args.count("system")) system = args["system"].as<std::string>();
    nlohmann::ordered_json messages = SingleTurnConversation(args["prompt"].as<std::string>(), system);
    if (output) {
      const nlohmann::ordered_json format = ResponseFormat(*output);
      AttachToSystem(messages, nullptr, &format);
    }
    rendered = RenderChat(messages, mode);
  }

  const Speculation speculation = SpeculativeFromArgs(args);
  // Everything that can be wrong with the request is found before the
  // weights load: the options against the config, the tokenizer, the schema.
  const ModelConfig file_config = ConfigFromArgs(args);
  GenerationRequest request;
  request.sampling = SamplingFromArgs(args, file_config.vocab_size);
  request.reasoning_budget = ReasoningBudgetFromArgs(args);
  std::optional<Tokenizer> tokenizer;
  std::optional<ConstraintCompiler> constraints;
  if (rendered) {
    tokenizer = LoadTokenizer(args, file_config);
    if (output) {
      constraints.emplace(*tokenizer, file_config.vocab_size);
      request.constraint = constraints->Compile(*output);
    }
    prompt = tokenizer->Encode(*rendered);
    request.reasoning = IsThinking(mode);
    // As in the API: a constrained answer gets half of max tokens unless told.
    if (output && request.reasoning && request.reasoning_budget < 0) request.reasoning_budget = request.sampling.max_tokens / 2;
  }
  if (!request.sampling.stop.empty() && !tokenizer) throw Error("--stop needs text output (-p)");
  CheckTokenIds(prompt, file_config.vocab_size, "--prompt-ids");

  Workload workload;
  workload.speculative = speculation.mode != Speculation::Mode::kOff;
  workload.longest_prompt = static_cast<int64_t>(prompt.size());
  LoadedModel loaded = LoadModel(args, workload);
  const ModelConfig& config = loaded.model().config();
  request.prompt = std::move(prompt);
  SessionStart session(args, loaded, request);
  const uint64_t seed = *request.sampling.seed;

  SchedulerOptions scheduling = PlannedSchedulerOptions(loaded);
  scheduling.speculative = speculation.UsesMtp(config);
  scheduling.draft_tokens = speculation.draft_tokens;
  Scheduler scheduler(loaded.model(), tokenizer ? &*tokenizer : nullptr, scheduling);
  OutputPrinter printer(tokenizer.has_value(), request.reasoning);
  GenerationUpdate last;
  std::optional<std::chrono::steady_clock::time_point> first_token;
  const auto start = std::chrono::steady_clock::now();
  scheduler.Submit(std::move(request), [&](const GenerationUpdate& u) {
    if (!first_token && !u.tokens.empty()) first_token = std::chrono::steady_clock::now();
    printer.Update(u);
    if (u.finish != FinishReason::kNone) last = u;
  });
  scheduler.Run();
  printer.Finish();
  if (last.finish == FinishReason::kError) throw Error(last.error);
  session.Save(last);

  const auto end = std::chrono::steady_clock::now();
  const auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  const double prefill = seconds(start, first_token.value_or(end)), decode = first_token ? seconds(*first_token, end) : 0;
  const Usage& u = last.usage;
  const int64_t computed = u.prompt_tokens - u.cached_tokens;
  std::fprintf(stderr,
               "prompt %lld tokens (%lld reused) in %.2f s, %.1f tok/s; generated %lld tokens in %.2f s, %.2f tok/s; "
               "finish %s; seed %llu\n",
               static_cast<long long>(u.prompt_tokens), static_cast<long long>(u.cached_tokens), prefill,
               computed / std::max(prefill, 1e-9), static_cast<long long>(u.completion_tokens), decode,
               u.completion_tokens > 1 ? (u.completion_tokens - 1) / std::max(decode, 1e-9) : 0.0,
               FinishReasonName(last.finish), static_cast<unsigned long long>(seed));
  if (scheduling.speculative) {
    const Scheduler::Stats stats = scheduler.stats();
    std::fprintf(stderr, "speculative: %lld drafts verified, %lld accepted (%.0f %%); MTP block %.2f s\n",
                 static_cast<long long>(stats.drafts), static_cast<long long>(stats.accepted_drafts),
                 100.0 * stats.accepted_drafts / std::max<int64_t>(stats.drafts, 1), stats.mtp_seconds);
  }
  return 0;
}

const RegisterCommand kRegister("run", "Generate text or token ids from a prompt", &RunRun);

}  // namespace
}  // namespace dsv4::cli
