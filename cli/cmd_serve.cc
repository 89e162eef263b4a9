// dsv4 serve: the OpenAI-compatible server (engine/serve/server.h). It
// listens before the model loads (/health says 503 until it is ready), then
// runs the model in this thread, and stops cleanly on SIGINT or SIGTERM.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <limits>
#include <string>
#include <thread>

#include "cli/arguments.h"
#include "cli/command.h"
#include "cli/model_options.h"
#include "cli/sampling_options.h"
#include "engine/serve/server.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

int RunServe(int argc, char** argv) {
  cxxopts::Options options("dsv4 serve", "An OpenAI-compatible server: /v1/chat/completions, /v1/completions, "
                                         "/v1/models, /health, /metrics, /tokenize, /detokenize, and a chat page at /");
  AddModelOptions(options);
  options.add_options()
      ("host", "Address to listen on (127.0.0.1: this machine only)",
       cxxopts::value<std::string>()->default_value("127.0.0.1"))
      ("port", "Port to listen on (0: any free one, printed on stderr)", cxxopts::value<int>()->default_value("8080"))
      ("api-key", "Require Authorization: Bearer KEY on every endpoint but /health and the page",
       cxxopts::value<std::string>())
      ("model-name", "The model id that /v1/models lists and responses report",
       cxxopts::value<std::string>()->default_value("deepseek-v4-flash"))
      ("queue", "Requests that may wait beyond --parallel; more get 429", cxxopts::value<int64_t>()->default_value("64"))
      ("mode", "Reasoning mode of requests that do not choose: chat | think | think-max",
       cxxopts::value<std::string>()->default_value("think"));
  AddSamplingOptions(options, 32768);
  AddSchedulerOptions(options, 4);
  const auto args = ParseOptions(options, argc, argv);
  if (!args.unmatched().empty()) throw Error("unexpected argument \"" + args.unmatched()[0] + "\"");
  RefuseSessionOptions(args, "serve", "the prefix cache reuses what requests share");

  ServerOptions server_options;
  server_options.host = args["host"].as<std::string>();
  const int port = args["port"].as<int>();
  if (port < 0 || port > 65535) throw Error("--port must be in 0..65535");
  server_options.port = port;
  if (args.count("api-key")) server_options.api_key = args["api-key"].as<std::string>();
  if (args.count("api-key") && server_options.api_key.empty()) throw Error("--api-key must not be empty");
  server_options.model_name = args["model-name"].as<std::string>();
  server_options.queue = args["queue"].as<int64_t>();
  if (server_options.queue < 0) throw Error("--queue must be >= 0");
  api::RequestDefaults& defaults = server_options.defaults;
  defaults.mode = ParseReasoningMode(args["mode"].as<std::string>());
  defaults.sampling = SamplingFromArgs(args, std::numeric_limits<int64_t>::max());
  // --seed seeds every request that sets none (a reproducible server);
  // otherwise each request draws its own.
  if (!args.count("seed")) defaults.sampling.seed.reset();
  defaults.reasoning_budget = ReasoningBudgetFromArgs(args);
  if (args["parallel"].as<int64_t>() < 1) throw Error("--parallel must be >= 1");

  // Signals go to one thread that stops the server; every thread started
  // from here inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // Before the port opens and the weights load: a bad tokenizer fails at once.
  // (After the mask: the tokenizer's build may start threads, which must
  // inherit it, or a SIGTERM could end the process in one of them.)
  const Tokenizer tokenizer = LoadTokenizer(args, ConfigFromArgs(args));

  server_options.scheduler.max_sequences = args["parallel"].as<int64_t>();
  Server server(server_options);
  const int bound = server.Start();
  std::fprintf(stderr, "dsv4 serve: listening on http://%s:%d\n", server_options.host.c_str(), bound);
  // The thread that waits for a signal is joined before `server` is destroyed
  // (on every path out, errors too): a detached one could still be inside
  // Stop() while the server goes away. Waking it with SIGTERM is harmless then.
  std::thread stopper([&server, stop_signals] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    server.Stop();
  });
  struct JoinStopper {
    std::thread& thread;
    ~JoinStopper() {
      pthread_kill(thread.native_handle(), SIGTERM);
      thread.join();
    }
  } join_stopper{stopper};

  const LoadedModel loaded = LoadModel(args, WorkloadFromArgs(args));
  const Model& model = loaded.model();
  std::fprintf(stderr, "dsv4 serve: model loaded (%s, %lld sequences at once, %lld queued at most)\n",
               server_options.model_name.c_str(), static_cast<long long>(server_options.scheduler.max_sequences),
               static_cast<long long>(server_options.queue));
  server.Run(model, tokenizer, loaded.stored.store ? loaded.stored.store->expert_cache() : nullptr,
             SchedulerOptionsFromArgs(args, loaded));
  std::fprintf(stderr, "dsv4 serve: stopped\n");
  return 0;
}

const RegisterCommand kRegister("serve", "An OpenAI-compatible HTTP server", &RunServe);

}  // namespace
}  // namespace dsv4::cli
