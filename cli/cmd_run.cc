// dsv4 run: greedy generation, from text (rendered with the official chat
// encoding and streamed back as text) or from token ids.
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "engine/text/chat_format.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/sequence_runner.h"
#include "engine/text/streaming_decoder.h"
#include "engine/text/tokenizer.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

// Prints generated text as it arrives, reasoning and answer apart: in the
// thinking modes everything before </think> is reasoning.
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, ReasoningMode mode)
      : decoder_(tokenizer), think_end_(tokenizer.TokenId(chat_tokens::kThinkEnd)),
        in_reasoning_(IsThinking(mode)) {
    if (in_reasoning_) Print("--- reasoning ---\n");
  }
  void Push(int32_t id) {
    if (in_reasoning_ && think_end_ && id == *think_end_) {
      Print(decoder_.Finish());
      Print("\n--- answer ---\n");
      in_reasoning_ = false;
      return;
    }
    Print(decoder_.Push(id));
  }
  void Finish() { Print(decoder_.Finish() + "\n"); }

 private:
  static void Print(const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  StreamingDecoder decoder_;
  std::optional<int32_t> think_end_;
  bool in_reasoning_;
};

int RunRun(int argc, char** argv) {
  cxxopts::Options options("dsv4 run", "Generate greedily from text or token ids");
  AddModelOptions(options);
  options.add_options()
      ("p,prompt", "Prompt text (rendered with the official chat encoding)", cxxopts::value<std::string>())
      ("system", "System prompt (with -p)", cxxopts::value<std::string>())
      ("mode", "Reasoning mode with -p: chat | think | think-max", cxxopts::value<std::string>()->default_value("chat"))
      ("prompt-ids", "Prompt token ids: 1,2,3 or @FILE (printed back as ids)", cxxopts::value<std::string>())
      ("n,max-tokens", "Tokens to generate at most", cxxopts::value<int64_t>()->default_value("64"));
  auto args = ParseOptions(options, argc, argv);
  if (args.count("prompt") && args.count("prompt-ids")) throw Error("-p and --prompt-ids exclude each other");
  if (!args.count("prompt") && !args.count("prompt-ids") && !args.count("load-session")) {
    throw Error("give -p TEXT or --prompt-ids IDS (or --load-session to continue a saved sequence)");
  }
  const int64_t max_tokens = args["max-tokens"].as<int64_t>();
  if (max_tokens < 0) throw Error("-n must be >= 0");
  const ReasoningMode mode = ParseReasoningMode(args["mode"].as<std::string>());

  LoadedModel loaded = LoadModel(args);
  const ModelConfig& config = loaded.model().config();
  std::optional<Tokenizer> tokenizer;
  std::vector<int32_t> prompt;
  if (args.count("prompt")) {
    const std::string path = (std::filesystem::path(args["model"].as<std::string>()) / "tokenizer.json").string();
    if (!std::filesystem::exists(path)) throw Error(path + ": not found (-p needs the model's tokenizer)");
    tokenizer = Tokenizer::FromFile(path);
    if (tokenizer->VocabSize() > config.vocab_size) {
      throw Error(path + ": " + std::to_string(tokenizer->VocabSize()) + " tokens, more than the model's vocab_size " +
                  std::to_string(config.vocab_size));
    }
    std::optional<std::string_view> system;
    if (args.count("system")) system = args["system"].as<std::string>();
    const std::string text = RenderChat(SingleTurnConversation(args["prompt"].as<std::string>(), system), mode);
    prompt = tokenizer->Encode(text);
  } else if (args.count("prompt-ids")) {
    prompt = ParseIds(args["prompt-ids"].as<std::string>(), "--prompt-ids");
  }

  SessionSequence sequence(args, loaded, prompt);
  SequenceRunner& runner = sequence.runner();
  if (!prompt.empty()) runner.Feed(prompt, false);
  std::vector<float> logits = runner.last_logits();
  std::optional<TextStream> stream;
  if (tokenizer) stream.emplace(*tokenizer, mode);
  std::string ids;
  // Every generated token is fed back, the last one too, so that a saved
  // session ends exactly where the output ends.
  for (int64_t i = 0; i < max_tokens && runner.length() < config.max_position_embeddings; ++i) {
    const int32_t next = ArgMax(logits.data(), config.vocab_size);
    if (next == config.eos_token_id) {
      runner.Feed({next}, false);
      break;
    }
    if (stream) {
      stream->Push(next);
    } else {
      ids += (ids.empty() ? "" : ",") + std::to_string(next);
    }
    logits = runner.Feed({next}, false);
  }
  if (stream) {
    stream->Finish();
  } else {
    std::printf("%s\n", ids.c_str());
  }
  sequence.Finish();
  return 0;
}

const RegisterCommand kRegister("run", "Generate text or token ids from a prompt", &RunRun);

}  // namespace
}  // namespace dsv4::cli
