// Everything one sequence carries from token to token (spec §5.3): per layer
// the sliding-window ring, the compressed rows, the indexer rows and the
// compressors' partial windows. Positions are absolute; each layer counts
// the tokens it has processed, so the MTP block keeps its own count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/kv/indexer_rows.h"
#include "engine/kv/kv_row_store.h"
#include "engine/kv/kv_spill.h"
#include "engine/model/numerics.h"
#include "loader/config.h"

namespace dsv4 {

// Where compressed KV rows live.
struct KvOptions {
  std::string spill_dir;       // empty: never spill
  int64_t ram_budget = -1;     // bytes of compressed rows kept in RAM; < 0: unlimited
  // Store round-tripped main compressed rows as codes + scales (exact)
  // rather than as f32. Indexer rows are codes either way.
  bool compact = true;
};

// The not-yet-pooled window(s) of a gated-pooling compressor (§4.7):
// [coff*ratio][coff*dim] projections and scores (scores include `ape`).
// What one sequence's state takes in memory, by the codecs it stores rows
// with: what the memory plan reserves and the scheduler admits against.
struct KvSize {
  // The rows one layer's store holds: one per `ratio` tokens, in pages of
  // KvRowStore::kRowsPerPage rows where `paged`, else in a vector whose
  // capacity doubles (IndexerRows).
  struct Rows {
    int64_t ratio = 0;
    int64_t row_bytes = 0;
    bool paged = false;
    int64_t Bytes(int64_t tokens) const;
  };
  int64_t fixed_bytes = 0;            // window rings and compressor buffers
  // Rows read at every step, never spilled: indexer rows, and the rows of
  // layers without an indexer (HCA), encoded and decoded.
  std::vector<Rows> ram_rows;
  std::vector<Rows> spillable_rows;   // main compressed rows of CSA layers: may spill to --kv-dir
  double ram_bytes_per_token = 0;     // the long-run averages of both
  double spillable_bytes_per_token = 0;
  int64_t RamBytes(int64_t tokens) const;        // the fixed part and ram_rows
  int64_t SpillableBytes(int64_t tokens) const;  // compressed rows, whole pages
  int64_t TotalBytes(int64_t tokens) const { return RamBytes(tokens) + SpillableBytes(tokens); }
};

struct CompressorState {
  std::vector<float> kv;
  std::vector<float> score;

  void Reset(int64_t ratio, int64_t dim, bool overlap);
  // The slot (of coff*dim floats) the token at `position` writes: with
  // overlap, slots 0..ratio hold the previous window, ratio..2*ratio the
  // current one.
  static int64_t Slot(int64_t ratio, bool overlap, int64_t position) {
    return (overlap ? ratio : 0) + position % ratio;
  }
};

struct LayerState {
  int64_t length = 0;                          // tokens this layer has processed
  std::vector<float> window;                   // [sliding_window][head_dim]; position p at row p % window
  std::unique_ptr<KvRowStore> compressed;      // main compressor rows (compressed layers)
  std::unique_ptr<IndexerRows> indexer_rows;   // indexer compressor rows (CSA layers)
  // Layers without an indexer (HCA) attend to every compressed row at every
  // step: their first rows decoded to f32 [rows][head_dim], extended as rows
  // are read and cut back with them, so a step decodes only the new ones.
  std::vector<float> decoded_rows;
  CompressorState compressor;
  CompressorState indexer_compressor;
};

class SequenceState {
 public:
  // Default numerics store compressed rows in the exact compact encoding
  // (main rows unless kv.compact is off); smooth numerics keep plain f32 rows.
  SequenceState(const ModelConfig& config, Numerics numerics, const KvOptions& kv = {});
  // What a state of this config, numerics and options takes.
  static KvSize Size(const ModelConfig& config, Numerics numerics, const KvOptions& kv = {});
  ~SequenceState();
  SequenceState(const SequenceState&) = delete;
  SequenceState& operator=(const SequenceState&) = delete;

  const ModelConfig& config() const { return *config_; }
  Numerics numerics() const { return numerics_; }
  // Tokens processed by the main layers: the next token's position.
  int64_t length() const { return layers_.front().length; }
  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  LayerState& layer(int64_t block) { return layers_.at(block); }
  const LayerState& layer(int64_t block) const { return layers_.at(block); }

  // Makes this fresh state (no tokens yet) an exact copy of `source` (same
  // config and numerics): the prefix cache's checkpoints and the states
  // restored from them. Rows spill under this state's own KvOptions.
  void CopyFrom(const SequenceState& source);

  // Speculative rows (drafts verified beside the current token): Mark saves
  // what the next `rows` positions overwrite in every main layer; once they
  // ran, RollBack(length) returns those layers to exactly the state, every
  // byte, they had after `length` tokens, for any length from the mark to
  // now. Each row writes its own compressor slot only while rows are at
  // most the shortest compression ratio, hence the limit. The MTP block's
  // layer is not touched (it only ever keeps rows of accepted tokens).
  static constexpr int64_t kMaxSpeculativeRows = 4;
  // Positions the MTP block has taken (its window ring). SkipMtp moves it on
  // to `length` without computing: the block attends only its window, so the
  // rows of positions more than a window before the next draft are never
  // read (closer ones skipped make that draft approximate, never wrong).
  int64_t mtp_length() const;
  void SkipMtp(int64_t length);
  void Mark(int64_t rows);
  void RollBack(int64_t length);
  // Chained drafts (k > 1) run the MTP block at positions whose main
  // streams are not known yet: MarkMtp saves the block's ring slots of its
  // next `rows` positions, RollBackMtp restores them and its length, so the
  // block is exactly as it was at MarkMtp.
  void MarkMtp(int64_t rows);
  void RollBackMtp();

  // A forward call that failed part way leaves a state whose layers may be
  // out of step; it is marked so, and every later use is refused with
  // `why` instead of computing from it.
  void MarkFailed(const std::string& why) { failure_ = why; }
  const std::string& failure() const { return failure_; }

  // Moves compressed rows to the spill file until RAM use fits the budget.
  void EnforceKvBudget();
  // Bytes of cached rows in RAM (compressed + indexer) and in the spill file.
  int64_t kv_ram_bytes() const;
  int64_t kv_spilled_bytes() const;
  // RAM held: the windows and compressor buffers plus kv_ram_bytes().
  int64_t ram_bytes() const;

 private:
  const ModelConfig* config_;
  Numerics numerics_;
  std::unique_ptr<KvSpill> spill_;  // declared before layers_: stores point into it
  std::vector<LayerState> layers_;  // main layers, then MTP blocks
  std::string failure_;             // empty while usable
  struct Undo;
  std::unique_ptr<Undo> undo_;      // since the last Mark
  struct MtpUndo {
    int64_t length = -1;        // the block's length at MarkMtp; -1: no mark
    std::vector<float> window;  // [rows][head_dim]: the ring slots of its next rows
  };
  MtpUndo mtp_undo_;
};

}  // namespace dsv4
