#include "engine/runtime/scheduler.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <exception>
#include <numeric>
#include <utility>

#include "engine/runtime/memory_plan.h"
#include "engine/runtime/stop_matcher.h"
#include "engine/text/chat_format.h"
#include "engine/text/streaming_decoder.h"
#include "loader/error.h"

namespace dsv4 {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kError:
      return "error";
  }
  return "none";
}

// One request from admission to its last update. `tokens` holds the prompt
// and everything generated; the state has processed the first `fed` of them.
struct Scheduler::Sequence {
  int64_t id = 0;
  GenerationRequest request;
  UpdateCallback on_update;
  int64_t prompt_size = 0;
  std::vector<int32_t> tokens;
  int64_t fed = 0;
  std::shared_ptr<SequenceState> state;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamingDecoder> decoder;
  std::unique_ptr<StopMatcher> stops;
  std::unique_ptr<ConstraintState> constraint;
  TokenMask allowed;  // this step's tokens under the constraint
  bool in_reasoning = false;
  Usage usage;
  FinishReason finish = FinishReason::kNone;
  // Finished, but its last tokens are still fed so that the state after the
  // generation becomes a prefix-cache checkpoint (the next chat turn starts
  // with it).
  bool closing = false;
  GenerationUpdate deferred;  // with return_state: the finish, sent once closing is done
  KvReservation kv;           // what admission counted for it
  // Speculative decoding: the drafts for the positions after the pending
  // token, verified beside it in the next step, and how this sequence's
  // drafts fared.
  std::vector<int32_t> drafts;
  DraftRecord record;

  bool generating() const { return finish == FinishReason::kNone; }
  bool decoding() const { return static_cast<int64_t>(tokens.size()) > prompt_size; }
};

Scheduler::Scheduler(const Model& model, const Tokenizer* tokenizer, const SchedulerOptions& options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(options),
      context_tokens_(options.context_tokens > 0
                          ? std::min(options.context_tokens, model.config().max_position_embeddings)
                          : model.config().max_position_embeddings),
      kv_size_(SequenceState::Size(model.config(), model.numerics(), options.kv)) {
  if (options_.max_sequences < 1) throw Error("the scheduler needs at least one sequence slot");
  if (options_.step_tokens < 1) throw Error("the scheduler needs at least one token per step");
  static_assert(DraftRecord::kDepths == SequenceState::kMaxSpeculativeRows - 1, "a draft per depth, and the token");
  if (options_.draft_tokens < 1 || options_.draft_tokens > DraftRecord::kDepths) {
    throw Error("--draft-tokens must be 1 to " + std::to_string(DraftRecord::kDepths));
  }
  if (options_.speculative && model.config().num_nextn_predict_layers == 0) {
    throw Error("--speculative mtp: this checkpoint has no MTP block (num_nextn_predict_layers is 0)");
  }
  if (tokenizer_) think_end_ = tokenizer_->TokenId(chat_tokens::kThinkEnd);
  if (options_.prefix_cache_bytes > 0) cache_ = std::make_unique<PrefixCache>(options_.prefix_cache_bytes);
}

Scheduler::~Scheduler() = default;

void CheckTokenIds(const std::vector<int32_t>& ids, int64_t vocab_size, const std::string& what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      throw Error(what + " token " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
  }
}

int64_t Scheduler::Submit(GenerationRequest request, UpdateCallback on_update) {
  const ModelConfig& c = model_.config();
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  if (n == 0) throw Error("the prompt is empty");
  if (n >= context_tokens_) {
    throw Error("the prompt has " + std::to_string(n) + " tokens; the context is " + std::to_string(context_tokens_) +
                (context_tokens_ < c.max_position_embeddings ? " (--ctx-size)" : " (max_position_embeddings)"));
  }
  CheckTokenIds(request.prompt, c.vocab_size, "prompt");
  ValidateSampling(request.sampling, c.vocab_size);
  if (request.constraint && request.constraint->vocabulary().vocab_size() != c.vocab_size) {
    throw Error("the structured-output constraint was compiled for another vocabulary size");
  }
  if (!request.sampling.seed) throw Error("the request has no seed");
  if (request.sampling.max_tokens < 0) throw Error("the request has no max_tokens");
  if (!request.sampling.stop.empty() && !tokenizer_) throw Error("stop strings need the model's tokenizer");
  if (request.reasoning && request.reasoning_budget >= 0 && !think_end_) {
    throw Error("a reasoning budget needs the model's tokenizer (for </think>)");
  }
  const int64_t tokens = std::min(context_tokens_, n + request.sampling.max_tokens);
  const KvReservation kv = Reserve(tokens);
  const std::string need = " for " + std::to_string(tokens) + " tokens (prompt " + std::to_string(n) +
                           " + max_tokens " + std::to_string(request.sampling.max_tokens) + ")";
  if (options_.kv_ram_pool >= 0 && kv.ram > options_.kv_ram_pool) {
    const bool spilling_helps = options_.kv.spill_dir.empty() && kv_size_.RamBytes(tokens) <= options_.kv_ram_pool;
    throw Error("the request needs " + FormatBytes(kv.ram) + " of KV in RAM" + need + ", more than the " +
                FormatBytes(options_.kv_ram_pool) + " the memory plan leaves for KV: " +
                (spilling_helps ? "give --kv-dir DIR to spill compressed rows to disk, or lower max_tokens"
                                : "lower max_tokens, or give a smaller --mem-budget to page more experts"));
  }
  if (options_.kv_disk_pool >= 0 && kv.disk > options_.kv_disk_pool) {
    throw Error("the request needs " + FormatBytes(kv.disk) + " of spilled KV" + need + ", more than the " +
                FormatBytes(options_.kv_disk_pool) + " free in --kv-dir " + options_.kv.spill_dir +
                ": give a --kv-dir with more room, or lower max_tokens");
  }
  auto s = std::make_unique<Sequence>();
  s->kv = kv;
  s->request = std::move(request);
  s->on_update = std::move(on_update);
  s->prompt_size = n;
  s->tokens = s->request.prompt;
  s->in_reasoning = s->request.reasoning;
  s->usage.prompt_tokens = n;
  std::lock_guard<std::mutex> lock(mutex_);
  s->id = next_id_++;
  const int64_t id = s->id;
  live_.insert(id);
  queue_.push_back(std::move(s));
  return id;
}

bool Scheduler::Cancel(int64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!live_.count(id) || std::count(cancelled_.begin(), cancelled_.end(), id)) return false;
  cancelled_.push_back(id);
  return true;
}

bool Scheduler::Idle() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.empty() && active_.empty();
}

Scheduler::Stats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void Scheduler::Snapshot() {
  int64_t ram = 0, spilled = 0, reserved = 0;
  for (const auto& s : active_) {
    reserved += s->kv.ram;
    if (!s->state) continue;
    ram += s->state->ram_bytes();
    spilled += s->state->kv_spilled_bytes();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.active = static_cast<int64_t>(active_.size());
  stats_.queued = static_cast<int64_t>(queue_.size());
  stats_.kv_ram_bytes = ram;
  stats_.kv_spilled_bytes = spilled;
  stats_.kv_reserved_bytes = reserved;
  stats_.prefix_cache_bytes = cache_ ? cache_->bytes() : 0;
  stats_.prefix_cache_entries = cache_ ? cache_->entries() : 0;
}

void Scheduler::Deliver(Sequence& s, GenerationUpdate& update) {
  update.request_id = s.id;
  if (update.finish != FinishReason::kNone) update.usage = s.usage;
  if (s.on_update) s.on_update(update);
}

void Scheduler::Finish(Sequence& s, FinishReason reason, const std::string& error, GenerationUpdate update) {
  if (reason == FinishReason::kStop || reason == FinishReason::kLength) {
    // What the decoder and the stop matcher still hold belongs to the output.
    if (s.decoder) {
      const std::string rest = s.decoder->Finish();
      if (s.in_reasoning) {
        update.reasoning += rest;
      } else {
        update.content += s.stops->Push(rest).text;
      }
    }
    if (s.stops) update.content += s.stops->Finish();
  }
  s.finish = reason;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.erase(s.id);
  }
  update.finish = reason;
  update.error = error;
  const bool keep = (cache_ || s.request.return_state) && s.state && s.state->failure().empty() &&
                    (reason == FinishReason::kStop || reason == FinishReason::kLength) &&
                    static_cast<int64_t>(s.tokens.size()) < context_tokens_;
  if (keep && s.request.return_state) {
    s.deferred = std::move(update);
  } else {
    Deliver(s, update);
  }
  if (keep) {
    s.closing = true;
  } else {
    s.state.reset();
  }
}

void Scheduler::Remember(const std::vector<int32_t>& tokens, const SequenceState& state) {
  try {
    cache_->Insert(tokens, state, options_.kv);
  } catch (const std::exception& e) {
    // A checkpoint only saves work (the copy could not spill, say): without
    // it the prefix is recomputed when it is needed.
    std::fprintf(stderr, "prefix cache: a checkpoint was not stored: %s\n", e.what());
  }
}

void Scheduler::Closed(Sequence& s, const float* logits) {
  if (cache_) Remember(s.tokens, *s.state);
  if (s.request.return_state) {
    s.deferred.final_state = std::move(s.state);
    s.deferred.all_tokens = s.tokens;
    if (logits) s.deferred.final_logits.assign(logits, logits + model_.config().vocab_size);
    Deliver(s, s.deferred);
  }
  s.closing = false;
  s.state.reset();
}

void Scheduler::SampleNext(Sequence& s, const float* logits) {
  GenerationUpdate update;
  FinishReason reason;
  const int64_t position = static_cast<int64_t>(s.tokens.size());
  try {
    Sampled sampled;
    if (s.in_reasoning && think_end_ && s.request.reasoning_budget >= 0 &&
        s.usage.reasoning_tokens >= s.request.reasoning_budget) {
      sampled.token = *think_end_;  // the budget is spent: end the reasoning as if sampled
    } else if (s.constraint) {
      if (s.in_reasoning) {
        s.constraint->AllowedInReasoning(s.allowed);
      } else {
        s.constraint->Allowed(s.allowed);
      }
      sampled = s.sampler->Sample(logits, position, &s.allowed);
    } else {
      sampled = s.sampler->Sample(logits, position);
    }
    reason = AcceptToken(s, sampled, update);
  } catch (const std::exception& e) {
    return Finish(s, FinishReason::kError, e.what());
  }
  if (reason == FinishReason::kNone) {
    Deliver(s, update);
  } else {
    Finish(s, reason, {}, std::move(update));
  }
}

FinishReason Scheduler::AcceptToken(Sequence& s, const Sampled& sampled, GenerationUpdate& update) {
  const ModelConfig& c = model_.config();
  const int32_t token = sampled.token;
  if (s.constraint && !s.in_reasoning) s.constraint->Accept(token);
  s.tokens.push_back(token);
  s.sampler->Accept(token);
  ++s.usage.completion_tokens;
  if (s.in_reasoning) ++s.usage.reasoning_tokens;
  update.tokens.push_back(sampled);
  const std::vector<int32_t>& stop_ids = s.request.sampling.stop_token_ids;
  if (token == c.eos_token_id || std::count(stop_ids.begin(), stop_ids.end(), token)) {
    return FinishReason::kStop;
  }
  if (s.decoder) {
    if (s.in_reasoning && think_end_ && token == *think_end_) {
      update.reasoning += s.decoder->Finish();
      update.reasoning_ended = true;
      s.in_reasoning = false;
      --s.usage.reasoning_tokens;  // the marker ends the reasoning; it is not part of it
    } else {
      const std::string text = s.decoder->Push(token);
      if (s.in_reasoning) {
        update.reasoning += text;
      } else {
        const StopMatcher::Result r = s.stops->Push(text);
        update.content += r.text;
        if (r.stopped) return FinishReason::kStop;
      }
    }
  }
  if (s.usage.completion_tokens >= s.request.sampling.max_tokens ||
      static_cast<int64_t>(s.tokens.size()) >= context_tokens_) {
    return FinishReason::kLength;
  }
  return FinishReason::kNone;
}

namespace {

// Restorable states are kept at every multiple of 128 positions (the
// ratio-128 compressor has nothing pending there) up to 4096, then ever
// sparser (32 per doubling of the position), so checkpointing a long prompt
// copies O(n log n) rather than O(n^2) bytes. The spacing at a position is
// also the spacing down to the last multiple of it.
int64_t CheckpointSpacing(int64_t position) {
  return 128 * static_cast<int64_t>(std::max<uint64_t>(1, std::bit_floor(static_cast<uint64_t>(position) / 4096)));
}

}  // namespace

// Besides the spaced positions, just before a prompt's final token, where
// the next turn's prompt diverges (contracts.md §6).
bool Scheduler::Checkpoint(int64_t position, int64_t prompt_end) const {
  if (position <= 0) return false;
  return position == prompt_end - 1 || position % CheckpointSpacing(position) == 0;
}

int64_t Scheduler::LastCheckpoint(int64_t limit, int64_t prompt_end) const {
  if (limit <= 0) return 0;
  if (prompt_end - 1 > 0 && prompt_end - 1 <= limit) return prompt_end - 1;
  return limit / CheckpointSpacing(limit) * CheckpointSpacing(limit);
}

bool Scheduler::AwaitsSharedPrefix(const Sequence& queued) const {
  if (!cache_ || queued.request.start_state) return false;
  const int64_t cached = cache_->LongestLength(queued.tokens);
  for (const auto& leader : active_) {
    if (!leader->generating() || leader->decoding()) continue;
    const auto mismatch = std::mismatch(leader->tokens.begin(), leader->tokens.end(), queued.tokens.begin(),
                                        queued.tokens.end());
    const int64_t common = mismatch.first - leader->tokens.begin();
    // Checkpoints are proper prefixes of the queued prompt (one token is left
    // to feed for its logits).
    const int64_t reach = LastCheckpoint(std::min(common, queued.prompt_size - 1), leader->prompt_size);
    // Worth a wait when the leader will store at least one more checkpoint
    // (128 rows) of the shared part than the cache holds now.
    if (reach > leader->fed && reach >= cached + 128) return true;
  }
  return false;
}

Scheduler::KvReservation Scheduler::Reserve(int64_t tokens) const {
  KvReservation r;
  const int64_t rows = kv_size_.SpillableBytes(tokens);
  r.ram = kv_size_.RamBytes(tokens);
  if (!options_.kv.spill_dir.empty() && options_.kv.ram_budget >= 0) {
    r.ram += std::min(rows, options_.kv.ram_budget);
    r.disk = std::max<int64_t>(0, rows - options_.kv.ram_budget);
  } else {
    r.ram += rows;
  }
  return r;
}

bool Scheduler::Fits(const KvReservation& r) const {
  KvReservation used;
  for (const auto& s : active_) {
    used.ram += s->kv.ram;
    used.disk += s->kv.disk;
  }
  return (options_.kv_ram_pool < 0 || used.ram + r.ram <= options_.kv_ram_pool) &&
         (options_.kv_disk_pool < 0 || used.disk + r.disk <= options_.kv_disk_pool);
}

void Scheduler::Admit() {
  // Looking past a few waiting prompts is enough: a batch submits prompts in
  // an order that puts sharing ones next to each other.
  constexpr size_t kAdmissionLookahead = 64;
  while (static_cast<int64_t>(active_.size()) < options_.max_sequences) {
    std::unique_ptr<Sequence> s;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto ready = queue_.begin();
      while (ready != queue_.end() && ready - queue_.begin() < static_cast<ptrdiff_t>(kAdmissionLookahead) &&
             AwaitsSharedPrefix(**ready)) {
        ++ready;
      }
      if (ready == queue_.end() || ready - queue_.begin() >= static_cast<ptrdiff_t>(kAdmissionLookahead)) return;
      // One that does not fit beside the running ones waits for them to
      // finish (Submit refused any that cannot fit alone).
      if (!Fits((*ready)->kv)) return;
      s = std::move(*ready);
      queue_.erase(ready);
    }
    const GenerationRequest& r = s->request;
    s->state = std::make_shared<SequenceState>(model_.config(), model_.numerics(), options_.kv);
    s->sampler = std::make_unique<Sampler>(r.sampling, model_.config().vocab_size, *r.sampling.seed);
    if (r.constraint) s->constraint = std::make_unique<ConstraintState>(r.constraint);
    if (tokenizer_) {
      s->decoder = std::make_unique<StreamingDecoder>(*tokenizer_);
      s->stops = std::make_unique<StopMatcher>(r.sampling.stop);
    }
    Sequence& seq = *s;
    active_.push_back(std::move(s));
    try {
      if (seq.request.start_state) {
        SequenceState& start = *seq.request.start_state;
        if (&start.config() != &model_.config() || start.numerics() != model_.numerics() ||
            start.length() > seq.prompt_size) {
          throw Error("the starting state does not belong to this model or prompt");
        }
        seq.state = std::move(seq.request.start_state);
        seq.fed = seq.state->length();
        seq.usage.cached_tokens = seq.fed;
        if (seq.fed == seq.prompt_size) {
          if (static_cast<int64_t>(seq.request.start_logits.size()) != model_.config().vocab_size) {
            throw Error("the starting state has no logits to continue from");
          }
          if (r.sampling.max_tokens > 0) SampleNext(seq, seq.request.start_logits.data());
        }
      } else if (cache_) {
        int64_t length = 0;
        if (const SequenceState* cached = cache_->Longest(seq.tokens, &length)) {
          seq.state->CopyFrom(*cached);
          seq.fed = length;
          seq.usage.cached_tokens = length;
        }
      }
      if (r.sampling.max_tokens == 0 && seq.generating()) Finish(seq, FinishReason::kLength);
    } catch (const std::exception& e) {
      Finish(seq, FinishReason::kError, e.what());
    }
  }
}

// The rows one sequence puts in a step: tokens [begin, end), the logits of
// the last if `logits`, and drafts for positions `end`, `end + 1`, ...
struct Scheduler::Span {
  Sequence* s;
  int64_t begin, end;
  bool logits;
  std::vector<int32_t> drafts;
};

bool Scheduler::Step() {
  // Cancellations first: their states are freed before any more work.
  std::vector<int64_t> cancelled;
  std::vector<std::unique_ptr<Sequence>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancelled.swap(cancelled_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (std::count(cancelled.begin(), cancelled.end(), (*it)->id)) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : dropped) Finish(*s, FinishReason::kCancelled);
  for (auto& s : active_) {
    if (s->generating() && std::count(cancelled.begin(), cancelled.end(), s->id)) {
      Finish(*s, FinishReason::kCancelled);
    }
  }
  const auto done = [](const std::unique_ptr<Sequence>& s) { return !s->generating() && !s->closing; };
  active_.erase(std::remove_if(active_.begin(), active_.end(), done), active_.end());
  Admit();
  active_.erase(std::remove_if(active_.begin(), active_.end(), done), active_.end());
  // A sequence that finished with nothing left to feed (max_tokens 0 on a
  // restored state) closes at once.
  for (auto& s : active_) {
    if (s->closing && s->fed == static_cast<int64_t>(s->tokens.size())) {
      const std::vector<float>& start = s->request.start_logits;
      const bool untouched = static_cast<int64_t>(s->tokens.size()) == s->prompt_size &&
                             static_cast<int64_t>(start.size()) == model_.config().vocab_size;
      Closed(*s, untouched ? start.data() : nullptr);
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(), done), active_.end());
  if (active_.empty()) {
    Snapshot();
    return !dropped.empty() || !cancelled.empty();
  }

  // Rows: sequences that are generating first (one or two rows each, and
  // latency matters), then prompts in admission order, within the budget.
  // A prompt's chunk ends at its next checkpoint so the state there can be
  // stored.
  std::vector<Span> spans;
  int64_t budget = options_.step_tokens;
  for (int pass = 0; pass < 2 && budget > 0; ++pass) {
    for (auto& owned : active_) {
      Sequence& s = *owned;
      const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.fed;
      if (pending <= 0 || budget <= 0 || (pass == 0) != (s.decoding() || s.closing)) continue;
      int64_t end = s.fed + std::min(pending, budget);
      if (cache_) {
        for (int64_t p = s.fed + 1; p < end; ++p) {
          if (p <= s.prompt_size && Checkpoint(p, s.prompt_size)) {
            end = p;
            break;
          }
        }
      }
      const bool logits = (s.generating() || (s.closing && s.request.return_state)) &&
                          end == static_cast<int64_t>(s.tokens.size());
      std::vector<int32_t> drafts = DraftsFor(s, budget);
      budget -= end - s.fed + static_cast<int64_t>(drafts.size());
      spans.push_back({&s, s.fed, end, logits, std::move(drafts)});
    }
  }
  std::vector<TokenRow> rows;
  std::vector<int64_t> logit_rows, first_row;
  bool mtp = false;
  for (const Span& span : spans) {
    first_row.push_back(static_cast<int64_t>(rows.size()));
    for (int64_t p = span.begin; p < span.end; ++p) rows.push_back({span.s->tokens[p], p, span.s->state.get()});
    if (span.logits) logit_rows.push_back(static_cast<int64_t>(rows.size()) - 1);
    if (!span.drafts.empty()) span.s->state->Mark(1 + static_cast<int64_t>(span.drafts.size()));
    for (size_t j = 0; j < span.drafts.size(); ++j) {
      rows.push_back({span.drafts[j], span.end + static_cast<int64_t>(j), span.s->state.get()});
      logit_rows.push_back(static_cast<int64_t>(rows.size()) - 1);
    }
    mtp = mtp || (options_.speculative && !span.s->request.drafter && span.s->generating());
  }
  const int64_t vocab = model_.config().vocab_size;
  std::vector<float> logits(logit_rows.size() * vocab), streams;
  const auto start = std::chrono::steady_clock::now();
  try {
    model_.Forward(rows, logit_rows, logits.data(), mtp ? &streams : nullptr);
  } catch (const std::exception& e) {
    // The sequences of this call are marked unusable by the model; the
    // others go on.
    for (const Span& span : spans) {
      if (span.s->generating()) {
        Finish(*span.s, FinishReason::kError, e.what());
      } else if (span.s->closing && span.s->request.return_state) {
        span.s->deferred.error = e.what();  // finished, but its final state is lost
        Deliver(*span.s, span.s->deferred);
      }
      span.s->closing = false;
      span.s->state.reset();
    }
    active_.erase(std::remove_if(active_.begin(), active_.end(), done), active_.end());
    Snapshot();
    return true;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t prefill_rows = 0;
  for (const Span& span : spans) {
    if (!span.s->decoding() && !span.s->closing) prefill_rows += span.end - span.begin;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.steps;
    stats_.forward_seconds += seconds;
    stats_.prefill_rows += prefill_rows;
    stats_.decode_rows += static_cast<int64_t>(rows.size()) - prefill_rows;
    if (prefill_rows == 0) {
      cost_.ObserveStep(static_cast<int64_t>(rows.size()), seconds);
      stats_.decode_seconds += seconds;
      stats_.decode_only_rows += static_cast<int64_t>(rows.size());
    } else {
      stats_.prefill_seconds += seconds;
    }
  }

  int64_t logit_index = 0;
  for (const Span& span : spans) {
    Sequence& s = *span.s;
    s.fed = span.end;
    if (cache_ && s.fed <= s.prompt_size && Checkpoint(s.fed, s.prompt_size)) {
      Remember({s.tokens.begin(), s.tokens.begin() + s.fed}, *s.state);
    }
    const float* row = span.logits ? logits.data() + (logit_index++) * vocab : nullptr;
    if (s.closing) {
      if (s.fed == static_cast<int64_t>(s.tokens.size())) Closed(s, row);
    } else if (row) {
      SampleNext(s, row);
      if (!span.drafts.empty()) {
        Verify(s, span.drafts, logits.data() + logit_index * vocab);
        logit_index += static_cast<int64_t>(span.drafts.size());
      }
      if (s.request.drafter && s.generating()) DraftWithDrafter(s);
    }
  }
  if (mtp) DraftWithMtp(spans, first_row, streams);
  active_.erase(std::remove_if(active_.begin(), active_.end(), done), active_.end());
  Snapshot();
  return true;
}

std::vector<int32_t> Scheduler::DraftsFor(Sequence& s, int64_t budget) const {
  std::vector<int32_t> drafts = std::move(s.drafts);
  s.drafts.clear();
  const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.fed;
  if (!s.generating() || s.closing || pending != 1) return {};
  // Room for the drafts and the token after them, in the step, the context
  // and max_tokens.
  const int64_t room = std::min({budget - 1, context_tokens_ - s.fed - 1,
                                 s.request.sampling.max_tokens - s.usage.completion_tokens - 1});
  const auto end = std::find(drafts.begin(), drafts.end(), -1);
  drafts.erase(end, drafts.end());
  if (static_cast<int64_t>(drafts.size()) > std::max<int64_t>(room, 0)) drafts.resize(std::max<int64_t>(room, 0));
  return drafts;
}

void Scheduler::Verify(Sequence& s, const std::vector<int32_t>& drafts, const float* draft_logits) {
  // SampleNext took the logits of the pending token's row: draft j stands if
  // the sequence sampled exactly it there and goes on; its row's logits then
  // give the token after it.
  const int64_t vocab = model_.config().vocab_size;
  const int64_t marked_end = s.fed + static_cast<int64_t>(drafts.size());
  int64_t accepted = 0;
  for (size_t j = 0; j < drafts.size(); ++j) {
    if (!s.generating() || static_cast<int64_t>(s.tokens.size()) != s.fed + 1 || s.tokens.back() != drafts[j]) break;
    ++accepted;
    ++s.fed;
    SampleNext(s, draft_logits + j * vocab);
  }
  s.record.Verified(static_cast<int64_t>(drafts.size()), accepted);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.drafts += static_cast<int64_t>(drafts.size());
    stats_.accepted_drafts += accepted;
  }
  if (s.fed < marked_end && s.state) s.state->RollBack(s.fed);
}

void Scheduler::DraftWithDrafter(Sequence& s) const {
  std::vector<int32_t> tokens = s.tokens;
  for (int64_t j = 0; j < options_.draft_tokens; ++j) {
    const int32_t draft = s.request.drafter(tokens);
    if (draft < 0) break;
    s.drafts.push_back(draft);
    tokens.push_back(draft);
  }
}

void Scheduler::Run() {
  while (!Idle()) Step();
}

void Scheduler::DraftWithMtp(const std::vector<Span>& spans, const std::vector<int64_t>& first_row,
                             const std::vector<float>& streams) {
  const ModelConfig& c = model_.config();
  const int64_t width = c.hc_mult * c.hidden_size, vocab = c.vocab_size;
  std::vector<TokenRow> rows;
  std::vector<float> inputs;
  std::vector<int64_t> logit_rows;
  std::vector<Sequence*> members;
  std::vector<std::pair<Sequence*, int64_t>> drafting;  // and how many drafts
  // Whether drafts pay depends on how many sequences share the steps.
  int64_t decoding_sequences = 0;
  for (const Span& span : spans) decoding_sequences += span.s->generating() && span.s->decoding() ? 1 : 0;
  const double break_even = cost_.BreakEven(std::max<int64_t>(decoding_sequences, 1));
  for (size_t i = 0; i < spans.size(); ++i) {
    Sequence& s = *spans[i].s;
    if (!s.generating() || s.request.drafter || !s.state) continue;
    SequenceState& state = *s.state;
    // The MTP row of main position q takes q's final streams (from this
    // step) and the token at q + 1. The block attends only its window, so
    // the rows the first draft needs begin a window before the prompt's end.
    const int64_t begin = std::max({spans[i].begin, s.prompt_size - c.sliding_window, state.mtp_length()});
    const int64_t end = std::min<int64_t>(s.fed, static_cast<int64_t>(s.tokens.size()) - 1);
    if (begin >= end) continue;
    const bool decoding = end == s.fed && s.decoding();
    const int64_t depths = decoding ? s.record.DraftsThatPay(options_.draft_tokens, break_even) : 0;
    if (decoding && depths == 0) ++s.record.undrafted_steps;
    if (decoding && !s.record.NeedsMtpRows(depths)) {
      state.SkipMtp(end);  // drafts do not pay for it now: its rows cost more than they help
      continue;
    }
    state.SkipMtp(begin);
    for (int64_t q = begin; q < end; ++q) {
      rows.push_back({s.tokens[q + 1], q, &state});
      const float* source = streams.data() + (first_row[i] + q - spans[i].begin) * width;
      inputs.insert(inputs.end(), source, source + width);
    }
    members.push_back(&s);
    if (depths > 0) {
      logit_rows.push_back(static_cast<int64_t>(rows.size()) - 1);
      drafting.emplace_back(&s, depths);
    }
  }
  if (rows.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> logits(logit_rows.size() * vocab), block_streams;
  int64_t mtp_rows = static_cast<int64_t>(rows.size());
  try {
    const bool chained = std::any_of(drafting.begin(), drafting.end(), [](const auto& d) { return d.second > 1; });
    model_.ForwardMtp(rows, inputs.data(), logit_rows, logits.data(), chained ? &block_streams : nullptr);
    for (size_t i = 0; i < drafting.size(); ++i) {
      const float* row = logits.data() + i * vocab;
      drafting[i].first->drafts = {ArgMax(row, vocab)};
    }
    // Deeper drafts: the block runs again on its own output streams of the
    // last row and the draft before, one position on. Those rows are undone
    // afterwards: the block keeps rows of accepted tokens only.
    std::vector<int64_t> chain_rows = logit_rows;  // each drafting sequence's row in block_streams
    for (int64_t depth = 1; chained; ++depth) {
      std::vector<TokenRow> next;
      std::vector<float> next_inputs;
      std::vector<size_t> owners;
      for (size_t i = 0; i < drafting.size(); ++i) {
        auto& [s, depths] = drafting[i];
        if (depths <= depth) continue;
        if (depth == 1) s->state->MarkMtp(depths - 1);
        next.push_back({s->drafts.back(), s->state->mtp_length(), s->state.get()});
        const float* source = block_streams.data() + chain_rows[i] * width;
        next_inputs.insert(next_inputs.end(), source, source + width);
        owners.push_back(i);
      }
      if (next.empty()) break;
      std::vector<int64_t> all(next.size());
      std::iota(all.begin(), all.end(), 0);
      std::vector<float> next_logits(next.size() * vocab);
      model_.ForwardMtp(next, next_inputs.data(), all, next_logits.data(), &block_streams);
      mtp_rows += static_cast<int64_t>(next.size());
      for (size_t r = 0; r < owners.size(); ++r) {
        drafting[owners[r]].first->drafts.push_back(ArgMax(next_logits.data() + r * vocab, vocab));
        chain_rows[owners[r]] = static_cast<int64_t>(r);
      }
    }
    for (auto& [s, depths] : drafting) {
      if (depths > 1) s->state->RollBackMtp();
      if (!s->request.on_mtp_draft) continue;
      for (size_t j = 0; j < s->drafts.size(); ++j) {
        s->request.on_mtp_draft(s->fed + 1 + static_cast<int64_t>(j), s->drafts[j]);
      }
    }
  } catch (const std::exception& e) {
    for (Sequence* s : members) Finish(*s, FinishReason::kError, e.what());
    return;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cost_.ObserveMtp(mtp_rows, seconds);
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.mtp_rows += mtp_rows;
  stats_.mtp_seconds += seconds;
}

}  // namespace dsv4
