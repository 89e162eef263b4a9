// What the runtime takes and gives back for one request: a prompt and its
// sampling settings in, a stream of updates (reasoning text, answer text,
// sampled tokens, then the finish and usage) out. run, chat, batch and serve
// all speak this.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/sequence_state.h"
#include "engine/runtime/sampler.h"
#include "engine/runtime/sampling.h"
#include "engine/structured/output_constraint.h"

namespace dsv4 {

struct GenerationRequest {
  std::vector<int32_t> prompt;     // token ids, at least one
  // Validated on submission. The command resolves the defaults first:
  // sampling.seed and sampling.max_tokens (>= 0) must be set.
  SamplingParams sampling;
  // The prompt ends inside the reasoning (it ends with <think>): generated
  // text is reasoning until </think>, the answer after it.
  bool reasoning = false;
  // With `reasoning`: once this many reasoning tokens are generated, the
  // runtime emits </think> itself, as if sampled (< 0: no budget).
  int64_t reasoning_budget = -1;
  // Structured output: the answer (after </think>) keeps to it; the
  // reasoning is free but may not end the sequence before it.
  std::shared_ptr<const OutputConstraint> constraint;
  // Continue from a state that has processed the first start_state->length()
  // prompt tokens (a loaded session). If it has processed all of them,
  // `start_logits` are the logits after the last one.
  std::shared_ptr<SequenceState> start_state;
  std::vector<float> start_logits;
  // Hand the final state back: every generated token is fed, and the last
  // update carries the state and the logits after the last token (to save
  // a session that ends exactly where the output ends).
  bool return_state = false;
  // Speculative decoding from other drafts than the MTP block's (an oracle,
  // for benchmarks and tests): called with every token so far, it returns
  // the draft for the position after the last one, or -1 for none. Drafts
  // never change the output, only how many tokens a step emits.
  std::function<int32_t(const std::vector<int32_t>& tokens)> drafter;
  // Sees each draft the MTP block makes (the position drafted and the
  // token), as tests compare them with the reference MTP logits.
  std::function<void(int64_t position, int32_t token)> on_mtp_draft;
};

enum class FinishReason {
  kNone,       // still running
  kStop,       // end of sequence, a stop token or a stop string
  kLength,     // max_tokens or the model's context
  kCancelled,  // Scheduler::Cancel
  kError,      // the request failed (`error` says why); others go on
};
const char* FinishReasonName(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // reasoning tokens included
  int64_t reasoning_tokens = 0;
  int64_t cached_tokens = 0;      // prompt tokens whose state came from the prefix cache
};

// One update of one request, delivered after a step. Text deltas are whole
// UTF-8 characters; the answer text never contains a stop string or what
// follows it.
struct GenerationUpdate {
  int64_t request_id = 0;
  std::vector<Sampled> tokens;  // tokens generated in this update (logprobs when asked)
  std::string reasoning;        // reasoning text delta
  std::string content;          // answer text delta
  bool reasoning_ended = false; // </think> came in this update: `content` is the answer from here on
  FinishReason finish = FinishReason::kNone;
  std::string error;            // with kError
  Usage usage;                  // complete when finish != kNone
  // With return_state, in the last update: the state after every token of
  // `all_tokens` (prompt and output) and the logits after the last of them.
  std::shared_ptr<SequenceState> final_state;
  std::vector<int32_t> all_tokens;
  std::vector<float> final_logits;
};

using UpdateCallback = std::function<void(const GenerationUpdate&)>;

}  // namespace dsv4
