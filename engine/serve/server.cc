#include "engine/serve/server.h"

#include <algorithm>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <random>
#include <sstream>

#include "engine/api/openai_response.h"
#include "engine/api/openai_stream.h"
#include "engine/api/stable_hash.h"
#include "engine/serve/chat_page.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string Dump(const Json& value) { return value.dump(-1, ' ', false, Json::error_handler_t::replace); }

void SendJson(httplib::Response& response, int status, const Json& body) {
  response.status = status;
  response.set_content(Dump(body), "application/json");
}

void SendError(httplib::Response& response, int status, const std::string& message, const std::string& param = {}) {
  SendJson(response, status, api::ErrorObject(status, message, param));
}

Json ParseBody(const httplib::Request& request) {
  try {
    return Json::parse(request.body);
  } catch (const Json::exception& e) {
    throw api::RequestError(std::string("the request body is not valid JSON: ") + e.what());
  }
}

uint64_t RandomBits() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return engine();
}

double Seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

}  // namespace

// Counters over the server's life, for /metrics.
class Server::Metrics {
 public:
  std::atomic<int64_t> requests{0}, invalid{0}, rejected{0}, failed{0}, cancelled{0};
  std::atomic<int64_t> prompt_tokens{0}, cached_tokens{0}, generated_tokens{0}, prefix_hits{0};
};

// One request's updates, passed from the stepping thread to the HTTP thread
// that answers it.
struct Server::Pending {
  std::mutex mutex;
  std::condition_variable arrived;
  std::deque<GenerationUpdate> updates;
  bool finished = false;
  int64_t id = 0;
  int64_t prompt_tokens = 0;
  Clock::time_point start = Clock::now();
  std::optional<Clock::time_point> first_token;

  void Push(const GenerationUpdate& update) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!first_token && !update.tokens.empty()) first_token = Clock::now();
      updates.push_back(update);
      finished = finished || update.finish != FinishReason::kNone;
    }
    arrived.notify_one();
  }
  // What arrived, waiting up to `timeout` for something.
  std::deque<GenerationUpdate> Take(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    arrived.wait_for(lock, timeout, [&] { return !updates.empty(); });
    std::deque<GenerationUpdate> taken;
    taken.swap(updates);
    return taken;
  }
};

Server::Server(const ServerOptions& options)
    : options_(options), http_(std::make_unique<httplib::Server>()), metrics_(std::make_unique<Metrics>()) {
  Route();
}

Server::~Server() {
  Stop();
  if (http_thread_.joinable()) http_thread_.join();
}

int Server::Start() {
  http_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  // Idle keep-alive connections hold pool threads, which Stop waits for.
  http_->set_keep_alive_timeout(2);
  // Every running or queued request holds an HTTP thread while it waits.
  const size_t threads = static_cast<size_t>(options_.scheduler.max_sequences + options_.queue + 16);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
  } else {
    port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port_ < 0) {
    throw Error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                " (in use, or not an address of this machine? --host, --port)");
  }
  // Started before the model loads and the team is pinned, so httplib's
  // pool threads keep every CPU the process may use.
  http_thread_ = std::thread([this] { http_->listen_after_bind(); });
  return port_;
}

void Server::Run(const Model& model, const Tokenizer& tokenizer, const ExpertCache* expert_cache,
                 const SchedulerOptions& scheduler) {
  // Written before ready_ is set; request handlers read them only after.
  model_ = &model;
  tokenizer_ = &tokenizer;
  expert_cache_ = expert_cache;
  options_.scheduler = scheduler;
  options_.defaults.context_tokens =
      scheduler.context_tokens > 0 ? std::min(scheduler.context_tokens, model.config().max_position_embeddings)
                                   : model.config().max_position_embeddings;
  constraints_ = std::make_unique<ConstraintCompiler>(tokenizer, model.config().vocab_size);
  options_.defaults.constraints = constraints_.get();
  scheduler_ = std::make_unique<Scheduler>(model, &tokenizer, options_.scheduler);
  ready_ = true;
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(wake_mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !scheduler_->Idle(); });
    }
    while (!stopping_ && scheduler_->Step()) {
    }
  }
  // Handlers end at their next check of stopping_; the pool with listening.
  if (http_thread_.joinable()) http_thread_.join();
}

void Server::Stop() {
  if (stopping_.exchange(true)) return;
  http_->stop();
  { std::lock_guard<std::mutex> lock(wake_mutex_); }
  wake_.notify_all();
}

int64_t Server::Submit(GenerationRequest request, UpdateCallback on_update) {
  const int64_t id = scheduler_->Submit(std::move(request), std::move(on_update));
  // Taking the mutex orders this wake-up after the stepping thread's check
  // for work, so it cannot be missed.
  { std::lock_guard<std::mutex> lock(wake_mutex_); }
  wake_.notify_one();
  return id;
}

bool Server::Authorized(const httplib::Request& request, httplib::Response& response) const {
  if (options_.api_key.empty() || request.get_header_value("Authorization") == "Bearer " + options_.api_key) {
    return true;
  }
  response.set_header("WWW-Authenticate", "Bearer");
  SendJson(response, 401,
           {{"error", {{"message", "a valid API key is required (Authorization: Bearer KEY)"},
                       {"type", "invalid_request_error"},
                       {"param", nullptr},
                       {"code", "invalid_api_key"}}}});
  return false;
}

bool Server::Ready(httplib::Response& response) const {
  if (ready_) return true;
  response.set_header("Retry-After", "5");
  SendError(response, 503, "the model is still loading");
  return false;
}

void Server::Route() {
  const auto guarded = [this](auto handler) {
    return [this, handler](const httplib::Request& request, httplib::Response& response) {
      if (Authorized(request, response) && Ready(response)) handler(request, response);
    };
  };
  http_->Get("/health", [this](const httplib::Request&, httplib::Response& response) {
    if (ready_) {
      SendJson(response, 200, {{"status", "ok"}});
    } else {
      response.set_header("Retry-After", "5");
      SendJson(response, 503, {{"status", "loading"}});
    }
  });
  // The page holds no data: it asks for the key itself, for its API calls.
  http_->Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content(std::string(kChatPage), "text/html; charset=utf-8");
  });
  http_->Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& response) {
    SendJson(response, 200,
             {{"object", "list"},
              {"data", Json::array({{{"id", options_.model_name},
                                     {"object", "model"},
                                     {"created", 0},
                                     {"owned_by", "dsv4"},
                                     {"max_model_len", options_.defaults.context_tokens}}})}});
  }));
  http_->Post("/v1/chat/completions", guarded([this](const httplib::Request& request, httplib::Response& response) {
    Generate(api::Endpoint::kChatCompletions, request, response);
  }));
  http_->Post("/v1/completions", guarded([this](const httplib::Request& request, httplib::Response& response) {
    Generate(api::Endpoint::kCompletions, request, response);
  }));
  http_->Post("/tokenize", guarded([this](const httplib::Request& request, httplib::Response& response) {
    Tokenize(request, response);
  }));
  http_->Post("/detokenize", guarded([this](const httplib::Request& request, httplib::Response& response) {
    Detokenize(request, response);
  }));
  http_->Get("/metrics", guarded([this](const httplib::Request&, httplib::Response& response) {
    response.set_content(MetricsText(), "text/plain; version=0.0.4");
  }));
  http_->set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;  // a handler already answered
    SendError(response, response.status,
              response.status == 404 ? "no such endpoint: " + request.method + " " + request.path
                                     : "the request failed with HTTP status " + std::to_string(response.status));
  });
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr e) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
    SendError(response, 500, "internal error: " + what);
  });
}

void Server::Generate(api::Endpoint endpoint, const httplib::Request& request, httplib::Response& response) {
  ++metrics_->requests;
  const auto start = Clock::now();
  api::ApiRequest r;
  try {
    const Json body = ParseBody(request);
    if (body.is_object() && body.contains("messages") && body["messages"].is_array() &&
        static_cast<int64_t>(body["messages"].size()) > options_.max_messages) {
      throw api::RequestError("messages has " + std::to_string(body["messages"].size()) + " entries; the limit is " +
                                  std::to_string(options_.max_messages),
                              "messages");
    }
    r = api::ParseRequest(endpoint, body, options_.defaults, *tokenizer_);
  } catch (const api::RequestError& e) {
    ++metrics_->invalid;
    std::fprintf(stderr, "serve: %s %s 400 %s\n", request.method.c_str(), request.path.c_str(), e.what());
    return SendError(response, e.status(), e.what(), e.param());
  }
  if (!r.generation.sampling.seed) r.generation.sampling.seed = options_.defaults.sampling.seed.value_or(RandomBits());
  const int64_t limit = options_.scheduler.max_sequences + options_.queue;
  if (in_flight_.fetch_add(1) >= limit) {
    --in_flight_;
    ++metrics_->rejected;
    response.set_header("Retry-After", "1");
    return SendError(response, 429,
                     "the server is busy (" + std::to_string(limit) + " requests running or queued); retry later");
  }
  const std::string prefix = endpoint == api::Endpoint::kCompletions ? "cmpl-" : "chatcmpl-";
  const api::ResponseIds ids{prefix + api::Hex64(RandomBits()), static_cast<int64_t>(std::time(nullptr)),
                             options_.model_name};
  // A streamed request builds chunks as its updates arrive; one that is not
  // only collects them.
  const auto stream = r.stream ? std::make_shared<api::ResponseStream>(r, *tokenizer_, ids) : nullptr;
  const auto collector = r.stream ? nullptr : std::make_shared<api::ResponseCollector>(r, *tokenizer_);
  const api::ResponseCollector& c = stream ? stream->collector() : *collector;
  auto pending = std::make_shared<Pending>();
  pending->start = start;
  pending->prompt_tokens = static_cast<int64_t>(r.generation.prompt.size());
  try {
    pending->id = Submit(std::move(r.generation), [pending](const GenerationUpdate& u) { pending->Push(u); });
  } catch (const Error& e) {  // the model's own limits (its vocabulary, its context)
    --in_flight_;
    ++metrics_->invalid;
    return SendError(response, 400, e.what());
  }
  // Accounting and the log line, once the request is over.
  const auto finished = [this, pending, stream, collector, path = request.path] {
    --in_flight_;
    const api::ResponseCollector& c = stream ? stream->collector() : *collector;
    // A request whose client went away ends before its final usage arrives.
    Usage u = c.usage();
    if (!c.finished()) u = {pending->prompt_tokens, c.tokens_seen(), 0, 0};
    metrics_->prompt_tokens += u.prompt_tokens;
    metrics_->cached_tokens += u.cached_tokens;
    metrics_->generated_tokens += u.completion_tokens;
    if (u.cached_tokens > 0) ++metrics_->prefix_hits;
    if (c.finish() == FinishReason::kError) ++metrics_->failed;
    if (!c.finished() || c.finish() == FinishReason::kCancelled) ++metrics_->cancelled;
    const auto end = Clock::now();
    const double total = Seconds(pending->start, end);
    const double ttft = pending->first_token ? Seconds(pending->start, *pending->first_token) : total;
    std::fprintf(stderr,
                 "serve: POST %s %s: prompt %lld (cached %lld), generated %lld, first token %.2f s, total %.2f s, "
                 "%.1f tok/s\n",
                 path.c_str(), c.finished() ? FinishReasonName(c.finish()) : "disconnected",
                 static_cast<long long>(u.prompt_tokens), static_cast<long long>(u.cached_tokens),
                 static_cast<long long>(u.completion_tokens), ttft, total,
                 u.completion_tokens > 1 ? (u.completion_tokens - 1) / std::max(total - ttft, 1e-9) : 0.0);
  };

  if (!r.stream) {
    while (!c.finished()) {
      if (stopping_) {
        SendError(response, 503, "the server is stopping");
        return finished();
      }
      for (const GenerationUpdate& u : pending->Take(std::chrono::milliseconds(500))) collector->Add(u);
    }
    if (c.finish() == FinishReason::kStop || c.finish() == FinishReason::kLength) {
      SendJson(response, 200, c.Body(ids));
    } else {
      SendError(response, 500, c.error().empty() ? "the request was cancelled" : c.error());
    }
    return finished();
  }

  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider(
      "text/event-stream",
      [this, pending, stream](size_t, httplib::DataSink& sink) {
        const auto send = [&](const std::string& event) {
          if (sink.write(event.data(), event.size())) return true;
          scheduler_->Cancel(pending->id);  // the client has gone: free its sequence now
          return false;
        };
        const std::deque<GenerationUpdate> updates = pending->Take(std::chrono::seconds(2));
        // A comment now and then finds out whether a client that is waiting
        // (queued, or in a long prefill) is still there.
        if (updates.empty()) return stopping_ ? false : send(": waiting\n\n");
        for (const GenerationUpdate& u : updates) {
          for (const Json& chunk : stream->Add(u)) {
            if (!send("data: " + Dump(chunk) + "\n\n")) return false;
          }
        }
        if (stream->collector().finished()) {
          if (!send("data: [DONE]\n\n")) return false;
          sink.done();
        }
        return true;
      },
      [this, pending, stream, finished](bool) {
        if (!stream->collector().finished()) scheduler_->Cancel(pending->id);
        finished();
      });
}

void Server::Tokenize(const httplib::Request& request, httplib::Response& response) const {
  try {
    const Json body = ParseBody(request);
    if (!body.is_object() || (!body.contains("messages") && !body.contains("prompt"))) {
      throw api::RequestError("give {\"prompt\": TEXT} or {\"messages\": [...]}");
    }
    const api::Endpoint endpoint = body.contains("messages") ? api::Endpoint::kChatCompletions : api::Endpoint::kCompletions;
    const api::ApiRequest r = api::ParseRequest(endpoint, body, options_.defaults, *tokenizer_);
    SendJson(response, 200,
             {{"tokens", r.generation.prompt},
              {"count", r.generation.prompt.size()},
              {"max_model_len", options_.defaults.context_tokens}});
  } catch (const api::RequestError& e) {
    SendError(response, e.status(), e.what(), e.param());
  }
}

void Server::Detokenize(const httplib::Request& request, httplib::Response& response) const {
  try {
    const Json body = ParseBody(request);
    const auto tokens = body.is_object() ? body.find("tokens") : body.end();
    if (!body.is_object() || tokens == body.end() || !tokens->is_array()) {
      throw api::RequestError("give {\"tokens\": [ids]}", "tokens");
    }
    std::vector<int32_t> ids;
    for (const Json& t : *tokens) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tokenizer_->VocabSize()) {
        throw api::RequestError("tokens must be ids in [0, " + std::to_string(tokenizer_->VocabSize()) + ")", "tokens");
      }
      ids.push_back(t.get<int32_t>());
    }
    SendJson(response, 200, {{"prompt", tokenizer_->Decode(ids)}});
  } catch (const api::RequestError& e) {
    SendError(response, e.status(), e.what(), e.param());
  }
}

std::string Server::MetricsText() const {
  const Scheduler::Stats s = scheduler_->stats();
  double expert_hit_rate = 1;  // every expert resident
  if (expert_cache_) {
    const ExpertCacheStats e = expert_cache_->stats();
    expert_hit_rate = e.hits + e.misses > 0 ? static_cast<double>(e.hits) / (e.hits + e.misses) : 0;
  }
  std::ostringstream out;
  out.precision(15);  // byte counts print whole
  const auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value << '\n';
  };
  metric("dsv4_requests_total", "counter", "Generation requests received.", metrics_->requests);
  metric("dsv4_requests_invalid_total", "counter", "Requests refused as invalid (400).", metrics_->invalid);
  metric("dsv4_requests_rejected_total", "counter", "Requests refused because the queue was full (429).",
         metrics_->rejected);
  metric("dsv4_requests_failed_total", "counter", "Requests the runtime failed (500).", metrics_->failed);
  metric("dsv4_requests_cancelled_total", "counter", "Requests whose client went away.", metrics_->cancelled);
  metric("dsv4_prompt_tokens_total", "counter", "Prompt tokens of finished requests.", metrics_->prompt_tokens);
  metric("dsv4_generated_tokens_total", "counter", "Tokens generated.", metrics_->generated_tokens);
  metric("dsv4_prefix_cache_hits_total", "counter", "Requests that started from a cached prefix.",
         metrics_->prefix_hits);
  metric("dsv4_prefix_cache_tokens_total", "counter", "Prompt tokens reused from the prefix cache.",
         metrics_->cached_tokens);
  metric("dsv4_prefill_tokens_per_second", "gauge", "Prompt rows per second of the steps that prefilled.",
         s.prefill_seconds > 0 ? s.prefill_rows / s.prefill_seconds : 0);
  metric("dsv4_decode_tokens_per_second", "gauge", "Rows per second of the steps that only decoded.",
         s.decode_seconds > 0 ? s.decode_only_rows / s.decode_seconds : 0);
  metric("dsv4_queue_depth", "gauge", "Requests waiting for a sequence slot.", s.queued);
  metric("dsv4_active_sequences", "gauge", "Sequences being prefilled or generated.", s.active);
  metric("dsv4_kv_ram_bytes", "gauge", "KV state of the active sequences in RAM.", s.kv_ram_bytes);
  metric("dsv4_kv_spilled_bytes", "gauge", "KV rows of the active sequences in spill files.", s.kv_spilled_bytes);
  metric("dsv4_prefix_cache_bytes", "gauge", "Bytes held by the prefix cache.", s.prefix_cache_bytes);
  metric("dsv4_expert_cache_hit_rate", "gauge", "Routed-expert uses served without a read (1 when all resident).",
         expert_hit_rate);
  metric("dsv4_speculative_drafts_total", "counter", "Draft tokens verified (speculative decoding).", s.drafts);
  metric("dsv4_speculative_accepted_total", "counter", "Draft tokens accepted: each one a token without a step.",
         s.accepted_drafts);
  metric("dsv4_mtp_block_seconds_total", "counter", "Time in the MTP block (drafts and keeping its window).",
         s.mtp_seconds);
  return out.str();
}

}  // namespace dsv4
