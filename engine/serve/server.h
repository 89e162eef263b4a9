// `dsv4 serve`: an OpenAI-compatible HTTP server (cpp-httplib) over the
// runtime. Requests become runtime requests through engine/api (the same
// mapping `dsv4 batch` uses) and share one Scheduler, which the thread that
// loaded the model steps: continuous batching across requests, one prefix
// cache for all (the second turn of a chat does not prefill the first
// again). HTTP threads only parse, wait for their request's updates and write
// them out.
//
// The server listens before the model is ready: /health answers 503 until
// SetModel, and 200 after; every other endpoint answers 503 meanwhile.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/api/openai_request.h"
#include "engine/model/model.h"
#include "engine/runtime/scheduler.h"
#include "engine/text/tokenizer.h"
#include "loader/expert_cache.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace dsv4 {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (Start returns it)
  std::string api_key;              // when set, Bearer auth on every endpoint but /health and the page
  std::string model_name = "deepseek-v4-flash";
  int64_t queue = 64;               // requests waiting beyond the running ones; more get 429
  int64_t max_body_bytes = 32 << 20;
  int64_t max_messages = 4096;
  api::RequestDefaults defaults;    // a seed here seeds requests that set none; else each draws one
  SchedulerOptions scheduler;       // max_sequences sizes the HTTP threads; SetModel gives the rest
};

class Server {
 public:
  explicit Server(const ServerOptions& options);
  ~Server();

  // Binds the socket (throws dsv4::Error when it cannot) and serves on a
  // thread of its own; returns the port.
  int Start();
  // The model is ready: serves requests with `scheduler` (which replaces the
  // options' scheduler settings) and the model's context as the limit of
  // prompt + max_tokens, stepping the scheduler in the calling thread until
  // Stop. That is the thread that loaded the model and set the OpenMP team:
  // its team is pinned, and its malloc arena (glibc's main one) keeps the
  // per-step buffers off mmap; stepping from another thread measured 30 %
  // slower. Returns once no thread uses the model any more. All must outlive
  // the server; expert_cache is null when every expert is resident.
  void Run(const Model& model, const Tokenizer& tokenizer, const ExpertCache* expert_cache,
           const SchedulerOptions& scheduler);
  // Stops accepting and ends Run (or makes it return at once). Thread-safe.
  void Stop();

 private:
  struct Pending;
  class Metrics;

  void Route();
  bool Authorized(const httplib::Request& request, httplib::Response& response) const;
  bool Ready(httplib::Response& response) const;
  void Generate(api::Endpoint endpoint, const httplib::Request& request, httplib::Response& response);
  void Tokenize(const httplib::Request& request, httplib::Response& response) const;
  void Detokenize(const httplib::Request& request, httplib::Response& response) const;
  std::string MetricsText() const;
  // Submits to the scheduler and wakes the stepping thread.
  int64_t Submit(GenerationRequest request, UpdateCallback on_update);

  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int port_ = 0;

  const Model* model_ = nullptr;
  const Tokenizer* tokenizer_ = nullptr;
  const ExpertCache* expert_cache_ = nullptr;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ConstraintCompiler> constraints_;  // response_format and tool_choice
  std::atomic<bool> ready_{false};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> in_flight_{0};  // admitted by the server, not yet finished
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace dsv4
