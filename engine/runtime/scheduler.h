// Continuous batching: many requests share each forward call. A step packs
// one decode row per decoding sequence, then prefill rows of admitted
// sequences up to a token budget, into one Model::Forward; new requests are
// admitted as others finish, and a cancelled request's state is freed at
// once. Prompts that share a token prefix with a cached state (a system
// prompt, the earlier turns of a chat) start from that state.
//
// Every row's logits are bit-identical however rows are packed (the model
// is batch-invariant, docs/architecture.md), and each request samples from
// its own random stream, so a request's tokens do not depend on what else
// runs beside it.
//
// Submit, Cancel and the queries may be called from any thread; Step and Run
// from one thread at a time, which is also where callbacks run.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/runtime/draft_policy.h"
#include "engine/runtime/generation.h"
#include "engine/runtime/prefix_cache.h"
#include "engine/text/tokenizer.h"

namespace dsv4 {

struct SchedulerOptions {
  int64_t max_sequences = 1;        // sequences generating at once (--parallel)
  int64_t step_tokens = 512;        // rows per forward call (decode rows first, then prefill)
  int64_t prefix_cache_bytes = 0;   // RAM for cached prefix states; 0 = no prefix reuse
  KvOptions kv;                     // where each sequence's compressed KV rows live
  int64_t context_tokens = 0;       // prompt + output per sequence (--ctx-size); 0: the model's context
  // Admission by memory (engine/runtime/memory_plan.h): a request is
  // admitted only when the KV of its prompt + max_tokens fits beside what
  // the running ones reserved: the part that stays in RAM (and compressed
  // rows beyond kv.ram_budget unless they spill) against kv_ram_pool, the
  // spilled part against kv_disk_pool. < 0: no limit.
  int64_t kv_ram_pool = -1;
  int64_t kv_disk_pool = -1;
  // Speculative decoding (docs/speculative.md): the checkpoint's MTP block
  // drafts the token after each sampled one; the next step verifies the
  // draft beside that token and keeps it only if it equals what the
  // sequence samples there, so the output is the same token for token.
  bool speculative = false;
  // Drafts a sequence may verify in one step (k, 1 to 3): the MTP block is
  // chained on its own output for the second and third; each depth is
  // drafted only while it pays (docs/speculative.md).
  int64_t draft_tokens = 1;
};

// Throws dsv4::Error naming the first token id outside [0, vocab_size), as
// "`what` token ID at index I ..." (Submit checks every request's prompt; a
// command checks the ids of its options before the model loads).
void CheckTokenIds(const std::vector<int32_t>& ids, int64_t vocab_size, const std::string& what);

class Scheduler {
 public:
  // tokenizer: for text output and stop strings; null = token ids only.
  Scheduler(const Model& model, const Tokenizer* tokenizer, const SchedulerOptions& options);
  ~Scheduler();

  // Queues a request; `on_update` receives its updates. Returns its id.
  // Throws dsv4::Error for an invalid request (empty prompt, sampling out of
  // range, stop strings without a tokenizer, prompt beyond the context) and
  // for one whose KV could never fit the pools, naming the flag that would
  // let it run. One that fits only beside fewer others waits.
  int64_t Submit(GenerationRequest request, UpdateCallback on_update);
  // Ends a queued or running request (a kCancelled update follows from the
  // next Step) and frees its state. False if it is unknown or already done.
  bool Cancel(int64_t id);

  // One forward call over the work that is ready. Returns false when there
  // was nothing to do.
  bool Step();
  // Steps until every submitted request has finished.
  void Run();

  bool Idle() const;
  // Tokens a sequence may hold, prompt and output.
  int64_t context_tokens() const { return context_tokens_; }
  // The prefix cache (null when disabled).
  const PrefixCache* prefix_cache() const { return cache_.get(); }

  struct Stats {
    int64_t steps = 0;
    int64_t prefill_rows = 0;
    int64_t decode_rows = 0;
    double forward_seconds = 0;   // inside Model::Forward
    double decode_seconds = 0;    // in steps that carried decode rows only
    int64_t decode_only_rows = 0; // decode rows of those steps
    double prefill_seconds = 0;   // in steps that carried prefill rows
    // As of the end of the last step:
    int64_t active = 0;           // admitted sequences
    int64_t queued = 0;           // submitted, waiting for a slot
    int64_t kv_ram_bytes = 0;     // the active sequences' state in RAM
    int64_t kv_spilled_bytes = 0; // and in the spill files
    int64_t kv_reserved_bytes = 0; // RAM the active sequences reserved (admission)
    int64_t prefix_cache_bytes = 0;
    int64_t prefix_cache_entries = 0;
    // Speculative decoding: drafts verified and accepted, and the MTP
    // block's rows and time (drafts and keeping its window current).
    int64_t drafts = 0;
    int64_t accepted_drafts = 0;
    int64_t mtp_rows = 0;
    double mtp_seconds = 0;
  };
  // A snapshot; callable from any thread.
  Stats stats() const;

 private:
  struct Sequence;

  void Admit();
  // RAM and spill bytes the KV of a request of `tokens` tokens may take.
  struct KvReservation {
    int64_t ram = 0, disk = 0;
  };
  KvReservation Reserve(int64_t tokens) const;
  bool Fits(const KvReservation& r) const;  // beside the active sequences' reservations
  // A queued prompt that shares a prefix with one still being prefilled
  // waits for that prefix's checkpoint instead of computing the same rows
  // beside it.
  bool AwaitsSharedPrefix(const Sequence& queued) const;
  // The last checkpoint position at or below `limit` of a prompt of
  // `prompt_end` tokens (0 if none).
  int64_t LastCheckpoint(int64_t limit, int64_t prompt_end) const;
  // Ends a sequence with one last update (holding `update`'s deltas, what
  // the decoder still held, and the usage); keeps its state for one more
  // feed when the state after the generation is worth caching.
  void Finish(Sequence& s, FinishReason reason, const std::string& error = {}, GenerationUpdate update = {});
  void Deliver(Sequence& s, GenerationUpdate& update);
  // A finished sequence has fed all its tokens: caches its state, or hands
  // it back with the deferred finish (return_state).
  void Closed(Sequence& s, const float* logits);
  // Stores a prefix-cache checkpoint; a failure to copy only loses the checkpoint.
  void Remember(const std::vector<int32_t>& tokens, const SequenceState& state);
  // Samples (or forces) the next token from `logits` and delivers it.
  void SampleNext(Sequence& s, const float* logits);
  // Appends a sampled (or forced) token; returns why it ends the request, if it does.
  FinishReason AcceptToken(Sequence& s, const Sampled& sampled, GenerationUpdate& update);
  bool Checkpoint(int64_t position, int64_t prompt_end) const;
  // The drafts the next step verifies for `s` (none, or up to k).
  std::vector<int32_t> DraftsFor(Sequence& s, int64_t budget) const;
  // Keeps the drafts, in order, while each equals the token sampled before
  // it (sampling the next from its row's logits); rolls back the others.
  void Verify(Sequence& s, const std::vector<int32_t>& drafts, const float* draft_logits);
  // Drafts from GenerationRequest::drafter: the next k positions.
  void DraftWithDrafter(Sequence& s) const;
  // Runs the MTP block over the rows this step fed (`first_row`: where each
  // span's rows begin in `streams`) and drafts from its logits.
  struct Span;
  void DraftWithMtp(const std::vector<Span>& spans, const std::vector<int64_t>& first_row,
                    const std::vector<float>& streams);
  // Refreshes the end-of-step part of the statistics.
  void Snapshot();

  const Model& model_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  int64_t context_tokens_;
  KvSize kv_size_;
  std::optional<int32_t> think_end_;
  std::unique_ptr<PrefixCache> cache_;

  mutable std::mutex mutex_;  // guards queue_, live_, cancelled_, next_id_, stats_
  std::deque<std::unique_ptr<Sequence>> queue_;
  std::set<int64_t> live_;    // submitted and not finished
  std::vector<int64_t> cancelled_;
  int64_t next_id_ = 1;

  std::vector<std::unique_ptr<Sequence>> active_;  // step thread only
  StepCost cost_;                                   // step thread only: what drafts cost
  Stats stats_;
};

}  // namespace dsv4
