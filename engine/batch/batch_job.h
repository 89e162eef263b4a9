// The overnight batch: every line of an OpenAI Batch API JSONL file answered
// through the runtime, into a resumable output (batch_output.h).
//
// Lines are read a window at a time; within a window, requests are sorted by
// their prompt tokens so that prompts sharing a prefix (a system prompt, a
// few-shot preamble) run one after another and the scheduler computes the
// shared part once. The answers do not depend on that order, on --parallel or
// on the shard: the model is batch-invariant and each request samples from a
// stream seeded by its own `seed`, or else by a hash of its custom_id.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/api/openai_request.h"
#include "engine/batch/batch_input.h"
#include "engine/model/model.h"
#include "engine/runtime/scheduler.h"
#include "engine/text/tokenizer.h"

namespace dsv4 {

struct BatchJobOptions {
  std::string input;
  std::string output;
  Shard shard;
  int64_t window = 4096;      // lines read and reordered at a time
  bool fresh = false;         // start the output over instead of resuming it
  uint64_t seed = 0;          // with the custom_id, seeds requests that set no seed
  std::string model_name;     // the "model" of every response
  api::RequestDefaults defaults;
  SchedulerOptions scheduler;
  // What else the answers depend on (model identity, numerics, the defaults
  // above as the flags gave them): a resumed output must have been computed
  // with the same. The job adds the input file's fingerprint, the shard and
  // the seed.
  nlohmann::ordered_json fingerprint;
  double progress_seconds = 2;
};

struct BatchSummary {
  int64_t lines = 0;             // lines of the shard
  int64_t resumed = 0;           // answered by an earlier run
  int64_t written = 0;           // records this run wrote
  int64_t request_errors = 0;    // of those, lines and requests refused (400s)
  int64_t failed = 0;            // requests the runtime failed: not written, retried by the next run
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;     // prompt tokens reused from shared prefixes
  int64_t computed_prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double seconds = 0;
};

// Runs the job; progress and the summary go to `log`. Throws dsv4::Error for
// what stops the whole job (unreadable input, an output of another run, a
// write failure); a bad line or request only gets its error record.
BatchSummary RunBatchJob(const Model& model, const Tokenizer& tokenizer, const BatchJobOptions& options,
                         std::FILE* log);

}  // namespace dsv4
