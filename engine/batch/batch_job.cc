#include "engine/batch/batch_job.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <vector>

#include "engine/api/openai_response.h"
#include "engine/api/stable_hash.h"
#include "engine/batch/batch_output.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// "2h05m", "3m07s", "12s".
std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (s >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60));
  } else if (s >= 60) {
    std::snprintf(buffer, sizeof(buffer), "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%llds", static_cast<long long>(s));
  }
  return buffer;
}

class BatchJob {
 public:
  BatchJob(const Model& model, const Tokenizer& tokenizer, const BatchJobOptions& options, std::FILE* log)
      : tokenizer_(tokenizer),
        constraints_(tokenizer, model.config().vocab_size),
        defaults_(WithConstraints(options.defaults, constraints_)),
        options_(options),
        log_(log),
        scan_(ScanInput(options.input, options.shard)),
        output_(BatchOutput::Open(options.output, BatchFingerprint{Fingerprint()}, options.fresh)),
        lines_(options.input, options.shard),
        scheduler_(model, &tokenizer, options.scheduler),
        created_(std::time(nullptr)) {
    summary_.lines = scan_.shard_lines;
  }

  BatchSummary Run() {
    const size_t in_flight_limit = static_cast<size_t>(options_.scheduler.max_sequences) * 2 + 16;
    while (true) {
      if (next_ == window_.size() && !end_of_input_) FillWindow();
      while (next_ < window_.size() && in_flight_.size() < in_flight_limit) Submit(window_[next_++]);
      if (in_flight_.empty() && next_ == window_.size() && end_of_input_) break;
      scheduler_.Step();
      if (Seconds(last_progress_) >= options_.progress_seconds) {
        output_.Sync();
        Progress();
        last_progress_ = Clock::now();
      }
    }
    output_.Sync();
    Summarize();
    return summary_;
  }

 private:
  struct Pending {
    int64_t line;
    std::string custom_id;
    api::ApiRequest request;
  };
  struct InFlight {
    std::string custom_id;
    api::ResponseCollector collector;
  };

  static double Seconds(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
  }

  Json Fingerprint() const {
    Json fields = options_.fingerprint;
    fields["input"] = {{"size", scan_.size_bytes}, {"sha256", scan_.sha256}};
    fields["shard"] = options_.shard.ToString();
    fields["seed"] = options_.seed;
    return fields;
  }

  // Ids derive from the input and the line, so they are stable across runs.
  std::string Hex(int64_t line) const { return api::Hex64(api::StableHash(scan_.sha256, line)); }

  void Write(int64_t line, const Json& custom_id, Json response, Json error) {
    output_.Append({{"id", "batch_req_" + Hex(line)},
                    {"custom_id", custom_id},
                    {"response", std::move(response)},
                    {"error", std::move(error)}});
    ++summary_.written;
  }

  // A line that is not a usable request: no custom_id to key it by, so the
  // record carries the line (0-based, as --shard counts) for resume and merge.
  void LineError(int64_t line, const std::string& code, const std::string& message) {
    Write(line, nullptr, nullptr,
          {{"code", code}, {"message", "input line " + std::to_string(line + 1) + ": " + message}, {"line", line}});
    ++summary_.request_errors;
  }

  // A request that the API refuses, answered as the server would (HTTP 400).
  void RequestError(int64_t line, const std::string& custom_id, const std::string& message, const std::string& param) {
    Write(line, custom_id,
          {{"status_code", 400}, {"request_id", "req_" + Hex(line)}, {"body", api::ErrorObject(400, message, param)}},
          nullptr);
    ++summary_.request_errors;
  }

  // Reads lines until a window of requests is pending (or the input ends),
  // answering those that are not requests at once; then orders the window so
  // that shared prompt prefixes are computed once.
  void FillWindow() {
    window_.clear();
    next_ = 0;
    int64_t line = 0;
    std::string text;
    while (static_cast<int64_t>(window_.size()) < options_.window) {
      if (!lines_.Next(line, text)) {
        end_of_input_ = true;
        break;
      }
      Read(line, text);
    }
    std::stable_sort(window_.begin(), window_.end(), [](const Pending& a, const Pending& b) {
      return a.request.generation.prompt < b.request.generation.prompt;
    });
  }

  void Read(int64_t line, const std::string& text) {
    if (IsBlankLine(text)) {
      ++blank_;
      return;
    }
    if (output_.DoneLine(line)) {
      ++summary_.resumed;
      return;
    }
    const BatchLine read = ReadBatchLine(options_.input, scan_, line, text);
    if (read.kind == BatchLine::Kind::kLineError) return LineError(line, read.code, read.message);
    if (output_.DoneId(read.custom_id)) {
      ++summary_.resumed;
      return;
    }
    if (read.kind == BatchLine::Kind::kRefused) return RequestError(line, read.custom_id, read.message, read.param);
    try {
      window_.push_back({line, read.custom_id, api::ParseRequest(read.endpoint, read.body, defaults_, tokenizer_)});
    } catch (const api::RequestError& e) {
      RequestError(line, read.custom_id, e.what(), e.param());
    }
  }

  void Submit(Pending& pending) {
    GenerationRequest& g = pending.request.generation;
    if (!g.sampling.seed) g.sampling.seed = api::StableHash(pending.custom_id, options_.seed);
    const int64_t line = pending.line;
    try {
      scheduler_.Submit(std::move(g), [this, line](const GenerationUpdate& u) { Update(line, u); });
    } catch (const Error& e) {  // the model's own limits (its vocabulary, say)
      return RequestError(line, pending.custom_id, e.what(), "");
    }
    in_flight_.emplace(line, InFlight{pending.custom_id, api::ResponseCollector(pending.request, tokenizer_)});
  }

  void Update(int64_t line, const GenerationUpdate& u) {
    const auto it = in_flight_.find(line);
    InFlight& f = it->second;
    f.collector.Add(u);
    if (!f.collector.finished()) return;
    const Usage& usage = f.collector.usage();
    if (f.collector.finish() == FinishReason::kStop || f.collector.finish() == FinishReason::kLength) {
      const std::string prefix = f.collector.endpoint() == api::Endpoint::kCompletions ? "cmpl-" : "chatcmpl-";
      const Json body = f.collector.Body({prefix + Hex(line), created_, options_.model_name});
      Write(line, f.custom_id, {{"status_code", 200}, {"request_id", "req_" + Hex(line)}, {"body", body}}, nullptr);
      summary_.prompt_tokens += usage.prompt_tokens;
      summary_.cached_tokens += usage.cached_tokens;
      summary_.completion_tokens += usage.completion_tokens;
    } else {
      // Not written: the next run of the same command retries it.
      ++summary_.failed;
      std::fprintf(log_, "batch: request \"%s\" (input line %lld) failed: %s\n", f.custom_id.c_str(),
                   static_cast<long long>(line + 1), f.collector.error().c_str());
    }
    in_flight_.erase(it);
  }

  int64_t Done() const { return summary_.resumed + summary_.written + blank_; }

  void Progress() {
    const double elapsed = Seconds(start_);
    const Scheduler::Stats stats = scheduler_.stats();
    const int64_t this_run = summary_.written;
    const int64_t left = summary_.lines - Done();
    std::string eta = "?";
    if (this_run > 0) eta = Duration(elapsed / this_run * left);
    std::fprintf(log_,
                 "batch: %lld/%lld done (%lld resumed, %lld errors, %lld failed) | prompt %.0f tok/s, generated "
                 "%.1f tok/s | %lld running | ETA %s\n",
                 static_cast<long long>(Done()), static_cast<long long>(summary_.lines),
                 static_cast<long long>(summary_.resumed), static_cast<long long>(summary_.request_errors),
                 static_cast<long long>(summary_.failed), stats.prefill_rows / std::max(elapsed, 1e-9),
                 stats.decode_rows / std::max(elapsed, 1e-9), static_cast<long long>(in_flight_.size()), eta.c_str());
    std::fflush(log_);
  }

  void Summarize() {
    summary_.seconds = Seconds(start_);
    summary_.computed_prompt_tokens = scheduler_.stats().prefill_rows;
    std::fprintf(log_,
                 "batch: %lld lines of shard %s done in %s: %lld written (%lld errors), %lld resumed, %lld failed; "
                 "prompt tokens %lld (%lld reused from shared prefixes, %lld computed), generated %lld (%.1f tok/s)\n",
                 static_cast<long long>(summary_.lines), options_.shard.ToString().c_str(),
                 Duration(summary_.seconds).c_str(), static_cast<long long>(summary_.written),
                 static_cast<long long>(summary_.request_errors), static_cast<long long>(summary_.resumed),
                 static_cast<long long>(summary_.failed), static_cast<long long>(summary_.prompt_tokens),
                 static_cast<long long>(summary_.cached_tokens),
                 static_cast<long long>(summary_.computed_prompt_tokens),
                 static_cast<long long>(summary_.completion_tokens),
                 summary_.completion_tokens / std::max(summary_.seconds, 1e-9));
    if (summary_.failed > 0) {
      std::fprintf(log_, "batch: %lld requests failed and were not written; run the same command again to retry them\n",
                   static_cast<long long>(summary_.failed));
    }
    std::fflush(log_);
  }

  static api::RequestDefaults WithConstraints(api::RequestDefaults defaults, ConstraintCompiler& constraints) {
    defaults.constraints = &constraints;
    return defaults;
  }

  const Tokenizer& tokenizer_;
  ConstraintCompiler constraints_;
  const api::RequestDefaults defaults_;  // options_.defaults with the constraint compiler
  const BatchJobOptions& options_;
  std::FILE* log_;
  InputScan scan_;
  BatchOutput output_;
  InputLines lines_;
  Scheduler scheduler_;
  const int64_t created_;
  std::vector<Pending> window_;
  size_t next_ = 0;
  bool end_of_input_ = false;
  std::map<int64_t, InFlight> in_flight_;  // by input line
  int64_t blank_ = 0;
  BatchSummary summary_;
  const Clock::time_point start_ = Clock::now();
  Clock::time_point last_progress_ = Clock::now();
};

}  // namespace

BatchSummary RunBatchJob(const Model& model, const Tokenizer& tokenizer, const BatchJobOptions& options,
                         std::FILE* log) {
  return BatchJob(model, tokenizer, options, log).Run();
}

}  // namespace dsv4
