// dsv4 chat: an interactive conversation. Every turn renders the whole
// conversation with the official encoding and submits it to one Scheduler,
// whose prefix cache holds the state of the turns before, so a turn computes
// little more than its own new tokens.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "cli/output_file.h"
#include "cli/sampling_options.h"
#include "engine/runtime/scheduler.h"
#include "engine/text/chat_format.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kHelp =
    "commands: /reset (forget the conversation, keep --system), /mode chat|think|think-max,\n"
    "          /save FILE, /load FILE, /help, /exit (or /quit; Ctrl-D too).\n"
    "          Ctrl-C stops the answer being generated.\n";

// Set by SIGINT while a turn is generating; the turn loop cancels the request.
volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

// Ctrl-C during a turn cancels it; at the prompt it ends the program as
// usual. SA_RESTART keeps the model's file reads and the worker threads'
// waits from failing with EINTR.
void CatchInterrupts(bool catching) {
  struct sigaction action = {};
  action.sa_handler = catching ? OnInterrupt : SIG_DFL;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  g_interrupted = 0;
}

// Each turn samples with its own seed, a function of the session's seed and
// the turn's index in the conversation, so a --seed session repeats exactly,
// and a conversation continued after /load samples as it would have without
// the break. (SplitMix64's finalizer: neighbouring indices give unrelated seeds.)
uint64_t TurnSeed(uint64_t base, int64_t turn) {
  uint64_t z = base + static_cast<uint64_t>(turn) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// What one turn produced, gathered from its updates.
struct TurnResult {
  std::string reasoning, content;
  FinishReason finish = FinishReason::kNone;
  std::string error;
  Usage usage;
  bool printed = false;  // something of the turn is on stdout
  std::optional<std::chrono::steady_clock::time_point> first_token;
  std::chrono::steady_clock::time_point end;
};

class Chat {
 public:
  Chat(const cxxopts::ParseResult& args, const LoadedModel& loaded, const Tokenizer& tokenizer,
       ReasoningMode mode, const SamplingParams& sampling, int64_t reasoning_budget)
      : tokenizer_(tokenizer), think_end_(tokenizer.TokenId(chat_tokens::kThinkEnd)),
        scheduler_(loaded.model(), &tokenizer, SchedulerOptionsFromArgs(args, loaded)), mode_(mode),
        sampling_(sampling), reasoning_budget_(reasoning_budget) {
    if (args.count("system")) system_ = args["system"].as<std::string>();
    Reset();
  }

  // Handles one input line; false when the chat should end.
  bool Handle(const std::string& line) {
    if (line.find_first_not_of(" \t") == std::string::npos) return true;
    if (line[0] == '/') return Command(line);
    Turn(line);
    return true;
  }

 private:
  void Reset() {
    messages_ = Json::array();
    if (system_) messages_.push_back({{"role", "system"}, {"content", *system_}});
  }

  bool Command(const std::string& line) {
    std::istringstream words(line);
    std::string command, argument;
    words >> command;
    std::getline(words >> std::ws, argument);
    try {
      if (command == "/exit" || command == "/quit") return false;
      if (command == "/help") {
        std::fputs(kHelp, stderr);
      } else if (command == "/reset") {
        Reset();
        std::fprintf(stderr, "[conversation reset]\n");
      } else if (command == "/mode") {
        if (!argument.empty()) mode_ = ParseReasoningMode(argument);
        std::fprintf(stderr, "[mode %s]\n", std::string(ReasoningModeName(mode_)).c_str());
      } else if (command == "/save") {
        if (argument.empty()) throw Error("/save needs a FILE");
        const Json saved = {{"mode", ReasoningModeName(mode_)}, {"messages", messages_}};
        WriteFileAtomically(argument, saved.dump(2) + "\n");
        std::fprintf(stderr, "[saved %zu messages to %s]\n", messages_.size(), argument.c_str());
      } else if (command == "/load") {
        if (argument.empty()) throw Error("/load needs a FILE");
        Load(argument);
        std::fprintf(stderr, "[loaded %zu messages from %s, mode %s]\n", messages_.size(), argument.c_str(),
                     std::string(ReasoningModeName(mode_)).c_str());
      } else {
        throw Error("unknown command " + command + " (/help lists them)");
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
    return true;
  }

  // Replaces the conversation and the mode with a /save file's, only when the
  // whole file is good: it must parse and render.
  void Load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw Error(path + ": cannot read");
    Json saved;
    try {
      saved = Json::parse(in);
    } catch (const Json::exception& e) {
      throw Error(path + ": not JSON (" + e.what() + ")");
    }
    if (!saved.is_object() || !saved.contains("mode") || !saved["mode"].is_string() ||
        !saved.contains("messages") || !saved["messages"].is_array()) {
      throw Error(path + ": expected {\"mode\": \"chat|think|think-max\", \"messages\": [...]}");
    }
    const ReasoningMode mode = ParseReasoningMode(saved["mode"].get<std::string>());
    try {
      RenderChat(saved["messages"], mode);
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
    mode_ = mode;
    messages_ = std::move(saved["messages"]);
  }

  // One user turn: the conversation gains the user's line and, when the turn
  // ends with stop or length, the answer; a cancelled or failed turn leaves
  // the conversation as it was.
  void Turn(const std::string& line) {
    messages_.push_back({{"role", "user"}, {"content", line}});
    int64_t turn = 0;
    for (const auto& m : messages_) turn += m.value("role", "") == "user";
    GenerationRequest request;
    request.sampling = sampling_;
    request.sampling.seed = TurnSeed(*sampling_.seed, turn);
    request.reasoning = IsThinking(mode_);
    request.reasoning_budget = reasoning_budget_;
    const TurnResult r = Generate(std::move(request));
    if (r.finish == FinishReason::kStop || r.finish == FinishReason::kLength) {
      Json answer = {{"role", "assistant"}, {"content", r.content}};
      if (IsThinking(mode_)) answer["reasoning_content"] = r.reasoning;
      messages_.push_back(std::move(answer));
    } else {
      messages_.erase(messages_.size() - 1);
    }
    if (r.finish == FinishReason::kError) {
      std::fprintf(stderr, "[turn %lld failed: %s]\n", static_cast<long long>(turn), r.error.c_str());
      return;
    }
    // The first token comes from the prompt's forward pass, each later one
    // from a decode step: the rate is the decode speed.
    const double decode_seconds =
        r.first_token ? std::chrono::duration<double>(r.end - *r.first_token).count() : 0.0;
    const double rate = r.usage.completion_tokens > 1 && decode_seconds > 0
                            ? (r.usage.completion_tokens - 1) / decode_seconds
                            : 0.0;
    std::string reasoning;
    if (IsThinking(mode_)) reasoning = " (" + std::to_string(r.usage.reasoning_tokens) + " reasoning)";
    std::fprintf(stderr, "[turn %lld: %lld prompt tokens, %lld reused from cache, %lld generated%s, %.1f tok/s, finish %s]\n",
                 static_cast<long long>(turn), static_cast<long long>(r.usage.prompt_tokens),
                 static_cast<long long>(r.usage.cached_tokens), static_cast<long long>(r.usage.completion_tokens),
                 reasoning.c_str(), rate, FinishReasonName(r.finish));
  }

  // Submits `request` with the conversation as its prompt, streams its text
  // to stdout as it comes, reasoning and answer apart under the markers
  // `dsv4 run` prints, and steps the scheduler until it is idle: after the
  // last update it still stores the state after the answer in the prefix
  // cache, where the next turn starts.
  TurnResult Generate(GenerationRequest request) {
    const bool thinking = request.reasoning;
    bool in_reasoning = thinking;
    TurnResult r;
    const auto on_update = [&](const GenerationUpdate& u) {
      const auto now = std::chrono::steady_clock::now();
      if (!r.first_token && !u.tokens.empty()) r.first_token = now;
      r.reasoning += u.reasoning;
      r.content += u.content;
      std::string text = u.reasoning;
      const bool think_ended =
          think_end_ && std::any_of(u.tokens.begin(), u.tokens.end(), [&](const Sampled& s) { return s.token == *think_end_; });
      if (in_reasoning && (think_ended || !u.content.empty())) {
        text += "\n--- answer ---\n";
        in_reasoning = false;
      }
      text += u.content;
      if (u.finish != FinishReason::kNone) {
        r.finish = u.finish;
        r.error = u.error;
        r.usage = u.usage;
        r.end = now;
        // Every answer ends its line; a cancelled or failed one only if it began.
        if (u.finish == FinishReason::kStop || u.finish == FinishReason::kLength || r.printed || !text.empty()) {
          text += "\n";
        }
      }
      if (!text.empty()) {
        Print(text);
        r.printed = true;
      }
    };
    int64_t id = 0;
    try {
      request.prompt = tokenizer_.Encode(RenderChat(messages_, mode_));
      id = scheduler_.Submit(std::move(request), on_update);
    } catch (const Error& e) {
      // The line is not UTF-8, or the conversation has outgrown the context.
      r.finish = FinishReason::kError;
      r.error = e.what();
      return r;
    }
    if (thinking) {
      Print("--- reasoning ---\n");
      r.printed = true;
    }
    CatchInterrupts(true);
    bool cancelled = false;
    while (!scheduler_.Idle()) {
      if (g_interrupted && !cancelled && r.finish == FinishReason::kNone) cancelled = scheduler_.Cancel(id);
      scheduler_.Step();
    }
    CatchInterrupts(false);
    return r;
  }

  const Tokenizer& tokenizer_;
  std::optional<int32_t> think_end_;
  Scheduler scheduler_;
  ReasoningMode mode_;
  SamplingParams sampling_;
  int64_t reasoning_budget_;
  std::optional<std::string> system_;
  Json messages_;
};

// The model's tokenizer.json: chat reads and writes text.
int RunChat(int argc, char** argv) {
  cxxopts::Options options("dsv4 chat",
                           "Chat with the model: one user turn per input line; /help lists the commands");
  AddModelOptions(options);
  options.add_options()
      ("system", "System prompt", cxxopts::value<std::string>())
      ("mode", "Reasoning mode: chat | think | think-max (/mode changes it)",
       cxxopts::value<std::string>()->default_value("chat"));
  AddSamplingOptions(options, 4096);
  AddSchedulerOptions(options, 1);
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  RefuseSessionOptions(args, "chat", "/save and /load keep a conversation; the prefix cache reuses its earlier turns");
  const ReasoningMode mode = ParseReasoningMode(args["mode"].as<std::string>());
  // The options are checked before the model loads, which can take long; the
  // vocabulary bounds only token ids (logit bias, stop ids), which the
  // command line does not give, and Submit checks them against the model.
  const SamplingParams sampling = SamplingFromArgs(args, std::numeric_limits<int64_t>::max());
  const int64_t reasoning_budget = ReasoningBudgetFromArgs(args);

  const Tokenizer tokenizer = LoadTokenizer(args, ConfigFromArgs(args));  // before the weights: a bad one fails at once
  const LoadedModel loaded = LoadModel(args, WorkloadFromArgs(args));
  if (!args.count("seed")) {
    std::fprintf(stderr, "seed %llu (--seed repeats this chat)\n", static_cast<unsigned long long>(*sampling.seed));
  }
  Chat chat(args, loaded, tokenizer, mode, sampling, reasoning_budget);
  const bool interactive = isatty(STDIN_FILENO);
  if (interactive) std::fputs(kHelp, stderr);
  std::string line;
  while (true) {
    if (interactive) std::fputs("> ", stderr);
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!chat.Handle(line)) break;
  }
  return 0;
}

const RegisterCommand kRegister("chat", "Chat with the model, one turn per input line", &RunChat);

}  // namespace
}  // namespace dsv4::cli
