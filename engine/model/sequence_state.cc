#include "engine/model/sequence_state.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "loader/error.h"

namespace dsv4 {

void CompressorState::Reset(int64_t ratio, int64_t dim, bool overlap) {
  const int64_t coff = overlap ? 2 : 1;
  kv.assign(coff * ratio * coff * dim, 0.0f);
  score.assign(coff * ratio * coff * dim, -std::numeric_limits<float>::infinity());
}

namespace {

// The codecs of a state's rows. Default numerics round-trip them (exactly
// stored as codes + scales, main rows unless kv.compact is off); smooth
// numerics keep plain f32 rows.
KvCodec MainCodec(const ModelConfig& config, Numerics numerics, const KvOptions& kv) {
  using Q = KvCodec::Quantization;
  return KvCodec(HasRoundTrips(numerics) ? Q::kFp8Nope : Q::kNone, kv.compact, config.head_dim,
                 config.qk_rope_head_dim);
}

// Indexer rows stay FP4 codes whatever kv.compact says: the exact score
// kernel (simd/indexer_scores.h) reads them in that form.
KvCodec IndexerCodec(const ModelConfig& config, Numerics numerics) {
  using Q = KvCodec::Quantization;
  return KvCodec(HasRoundTrips(numerics) ? Q::kFp4 : Q::kNone, /*compact=*/true, config.index_head_dim,
                 config.qk_rope_head_dim);
}

// Floats of a compressor's buffers (kv and score), as CompressorState::Reset sizes them.
int64_t CompressorFloats(int64_t ratio, int64_t dim, bool overlap) {
  const int64_t coff = overlap ? 2 : 1;
  return 2 * coff * ratio * coff * dim;
}

}  // namespace

int64_t KvSize::Rows::Bytes(int64_t tokens) const {
  const int64_t rows = tokens / ratio;
  if (rows == 0) return 0;
  if (paged) return (rows + KvRowStore::kRowsPerPage - 1) / KvRowStore::kRowsPerPage * KvRowStore::kRowsPerPage * row_bytes;
  return static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(rows))) * row_bytes;
}

int64_t KvSize::RamBytes(int64_t tokens) const {
  int64_t bytes = fixed_bytes;
  for (const Rows& r : ram_rows) bytes += r.Bytes(tokens);
  return bytes;
}

int64_t KvSize::SpillableBytes(int64_t tokens) const {
  int64_t bytes = 0;
  for (const Rows& r : spillable_rows) bytes += r.Bytes(tokens);
  return bytes;
}

KvSize SequenceState::Size(const ModelConfig& config, Numerics numerics, const KvOptions& kv) {
  const int64_t main_row = MainCodec(config, numerics, kv).bytes_per_row();
  const int64_t indexer_row = IndexerCodec(config, numerics).bytes_per_row();
  KvSize size;
  for (int64_t L = 0; L < config.NumBlocks(); ++L) {
    size.fixed_bytes += config.sliding_window * config.head_dim * static_cast<int64_t>(sizeof(float));
    const int64_t ratio = config.CompressRatio(L);
    if (ratio == 0) continue;
    size.fixed_bytes += CompressorFloats(ratio, config.head_dim, ratio == 4) * static_cast<int64_t>(sizeof(float));
    if (ratio != 4) {
      const int64_t decoded_row = config.head_dim * static_cast<int64_t>(sizeof(float));
      size.ram_rows.push_back({ratio, main_row, /*paged=*/true});
      size.ram_rows.push_back({ratio, decoded_row, /*paged=*/false});
      size.ram_bytes_per_token += static_cast<double>(main_row + decoded_row) / ratio;
      continue;
    }
    size.spillable_rows.push_back({ratio, main_row, /*paged=*/true});
    size.spillable_bytes_per_token += static_cast<double>(main_row) / ratio;
    size.fixed_bytes += CompressorFloats(4, config.index_head_dim, true) * static_cast<int64_t>(sizeof(float));
    size.ram_rows.push_back({4, indexer_row, /*paged=*/false});
    size.ram_bytes_per_token += static_cast<double>(indexer_row) / ratio;
  }
  return size;
}

SequenceState::SequenceState(const ModelConfig& config, Numerics numerics, const KvOptions& kv)
    : config_(&config), numerics_(numerics) {
  if (!kv.spill_dir.empty() && kv.ram_budget >= 0) spill_ = std::make_unique<KvSpill>(kv.spill_dir, kv.ram_budget);
  const KvCodec main_codec = MainCodec(config, numerics, kv);
  const KvCodec index_codec = IndexerCodec(config, numerics);
  layers_.resize(config.NumBlocks());
  for (int64_t L = 0; L < config.NumBlocks(); ++L) {
    LayerState& s = layers_[L];
    s.window.assign(config.sliding_window * config.head_dim, 0.0f);
    const int64_t ratio = config.CompressRatio(L);
    if (ratio > 0) {
      s.compressor.Reset(ratio, config.head_dim, ratio == 4);
      // HCA rows are all read at every step (and are few: one per 128
      // tokens), so they stay in RAM like indexer rows.
      s.compressed = std::make_unique<KvRowStore>(main_codec, ratio == 4 ? spill_.get() : nullptr);
    }
    if (ratio == 4) {
      // Indexer rows are scanned at every step, so they always stay in RAM.
      s.indexer_compressor.Reset(4, config.index_head_dim, true);
      s.indexer_rows = std::make_unique<IndexerRows>(index_codec);
    }
  }
}

namespace {

// Appends every row of `from` to `to` in their encoded form, in batches
// (KvRowStore or IndexerRows).
template <typename Store>
void CopyRows(const Store& from, Store& to) {
  constexpr int64_t kBatch = 1024;
  std::vector<uint8_t> buffer;
  for (int64_t begin = 0; begin < from.size(); begin += kBatch) {
    const int64_t count = std::min<int64_t>(kBatch, from.size() - begin);
    buffer.resize(count * from.codec().bytes_per_row());
    from.ReadEncoded(begin, count, buffer.data());
    to.AppendEncoded(buffer.data(), count);
  }
}

int64_t FloatBytes(const std::vector<float>& v) { return static_cast<int64_t>(v.capacity() * sizeof(float)); }

}  // namespace

void SequenceState::CopyFrom(const SequenceState& source) {
  if (source.config_ != config_ || source.numerics_ != numerics_ || source.layers_.size() != layers_.size()) {
    throw Error("cannot copy a sequence state of another model or numerics");
  }
  if (!source.failure_.empty()) throw Error(source.failure_);
  // The spill file holds pointers to this state's row stores, so they are
  // filled, never replaced: only a fresh state takes a copy.
  for (const LayerState& s : layers_) {
    if (s.length != 0) throw Error("a sequence state can only be copied into a fresh one");
  }
  for (size_t L = 0; L < layers_.size(); ++L) {
    const LayerState& from = source.layers_[L];
    LayerState& to = layers_[L];
    to.length = from.length;
    to.window = from.window;
    to.compressor = from.compressor;
    to.indexer_compressor = from.indexer_compressor;
    if (to.compressed) CopyRows(*from.compressed, *to.compressed);
    if (to.indexer_rows) CopyRows(*from.indexer_rows, *to.indexer_rows);
  }
  EnforceKvBudget();
}

int64_t SequenceState::ram_bytes() const {
  int64_t bytes = kv_ram_bytes();
  for (const LayerState& s : layers_) {
    bytes += FloatBytes(s.window) + FloatBytes(s.compressor.kv) + FloatBytes(s.compressor.score) +
             FloatBytes(s.indexer_compressor.kv) + FloatBytes(s.indexer_compressor.score);
  }
  return bytes;
}

void SequenceState::EnforceKvBudget() {
  if (spill_) spill_->Enforce();
}

int64_t SequenceState::kv_ram_bytes() const {
  int64_t bytes = 0;
  for (const LayerState& s : layers_) {
    if (s.compressed) bytes += s.compressed->resident_bytes();
    if (s.indexer_rows) bytes += s.indexer_rows->resident_bytes();
    bytes += FloatBytes(s.decoded_rows);
  }
  return bytes;
}

int64_t SequenceState::kv_spilled_bytes() const { return spill_ ? spill_->spilled_bytes() : 0; }


// What the speculative rows overwrite, saved at Mark.
struct SequenceState::Undo {
  // One compressor: the slots of the marked positions, and with overlap the
  // previous window's half when one of them ends a window (ending a window
  // copies the current half over it).
  struct Compressor {
    int64_t ratio = 0, width = 0;
    bool overlap = false;
    std::vector<float> kv, score;                    // [rows][width], in position order
    std::vector<float> previous_kv, previous_score;  // slots 0..ratio, or empty
    int64_t window_end = -1;                         // the marked position that ends a window

    void Save(const CompressorState& state, int64_t ratio_, int64_t dim, bool overlap_, int64_t begin, int64_t rows);
    // Undoes positions [keep, end).
    void Restore(CompressorState& state, int64_t begin, int64_t keep, int64_t end) const;
  };
  struct Layer {
    std::vector<float> window;  // [rows][head_dim]: the ring slots of the marked positions
    Compressor main, indexer;
  };
  int64_t begin = 0, rows = 0;
  std::vector<Layer> layers;  // the main layers
};

void SequenceState::Undo::Compressor::Save(const CompressorState& state, int64_t ratio_, int64_t dim, bool overlap_,
                                           int64_t begin, int64_t rows) {
  ratio = ratio_;
  overlap = overlap_;
  width = (overlap ? 2 : 1) * dim;
  kv.resize(rows * width);
  score.resize(rows * width);
  window_end = -1;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t slot = CompressorState::Slot(ratio, overlap, begin + i) * width;
    std::copy_n(state.kv.begin() + slot, width, kv.begin() + i * width);
    std::copy_n(state.score.begin() + slot, width, score.begin() + i * width);
    if ((begin + i) % ratio == ratio - 1) window_end = begin + i;
  }
  if (overlap && window_end >= 0) {
    previous_kv.assign(state.kv.begin(), state.kv.begin() + ratio * width);
    previous_score.assign(state.score.begin(), state.score.begin() + ratio * width);
  }
}

void SequenceState::Undo::Compressor::Restore(CompressorState& state, int64_t begin, int64_t keep,
                                              int64_t end) const {
  for (int64_t q = keep; q < end; ++q) {
    const int64_t slot = CompressorState::Slot(ratio, overlap, q) * width;
    std::copy_n(kv.begin() + (q - begin) * width, width, state.kv.begin() + slot);
    std::copy_n(score.begin() + (q - begin) * width, width, state.score.begin() + slot);
  }
  if (overlap && window_end >= keep && window_end < end) {
    std::copy(previous_kv.begin(), previous_kv.end(), state.kv.begin());
    std::copy(previous_score.begin(), previous_score.end(), state.score.begin());
  }
}

SequenceState::~SequenceState() = default;

int64_t SequenceState::mtp_length() const {
  if (config_->num_nextn_predict_layers == 0) throw Error("this checkpoint has no MTP block");
  return layers_[config_->num_hidden_layers].length;
}

void SequenceState::SkipMtp(int64_t length) {
  if (length < mtp_length()) throw Error("the MTP block cannot go back to position " + std::to_string(length));
  layers_[config_->num_hidden_layers].length = length;
}

void SequenceState::Mark(int64_t rows) {
  const ModelConfig& c = *config_;
  if (rows < 1 || rows > kMaxSpeculativeRows || rows > c.sliding_window) {
    throw Error("cannot mark " + std::to_string(rows) + " speculative rows (1 to " +
                std::to_string(std::min(kMaxSpeculativeRows, c.sliding_window)) + ")");
  }
  if (!failure_.empty()) throw Error(failure_);
  auto undo = std::make_unique<Undo>();
  undo->begin = length();
  undo->rows = rows;
  undo->layers.resize(c.num_hidden_layers);
  const int64_t d = c.head_dim;
  for (int64_t L = 0; L < c.num_hidden_layers; ++L) {
    const LayerState& s = layers_[L];
    Undo::Layer& u = undo->layers[L];
    u.window.resize(rows * d);
    for (int64_t i = 0; i < rows; ++i) {
      std::copy_n(s.window.begin() + (undo->begin + i) % c.sliding_window * d, d, u.window.begin() + i * d);
    }
    const int64_t ratio = c.CompressRatio(L);
    if (ratio > 0) u.main.Save(s.compressor, ratio, d, ratio == 4, undo->begin, rows);
    if (ratio == 4) u.indexer.Save(s.indexer_compressor, 4, c.index_head_dim, true, undo->begin, rows);
  }
  undo_ = std::move(undo);
}

void SequenceState::RollBack(int64_t keep) {
  if (!failure_.empty()) throw Error(failure_);
  const int64_t end = length();
  if (!undo_ || keep < undo_->begin || keep > end || end > undo_->begin + undo_->rows) {
    throw Error("cannot roll back to " + std::to_string(keep) + " tokens: the marked rows do not cover it");
  }
  const ModelConfig& c = *config_;
  const int64_t d = c.head_dim, begin = undo_->begin;
  for (int64_t L = 0; L < c.num_hidden_layers; ++L) {
    LayerState& s = layers_[L];
    const Undo::Layer& u = undo_->layers[L];
    for (int64_t q = keep; q < end; ++q) {
      std::copy_n(u.window.begin() + (q - begin) * d, d, s.window.begin() + q % c.sliding_window * d);
    }
    const int64_t ratio = c.CompressRatio(L);
    if (ratio > 0) {
      u.main.Restore(s.compressor, begin, keep, end);
      s.compressed->Truncate(keep / ratio);
      const int64_t decoded = std::min<int64_t>(static_cast<int64_t>(s.decoded_rows.size()), keep / ratio * d);
      s.decoded_rows.resize(decoded);
    }
    if (ratio == 4) {
      u.indexer.Restore(s.indexer_compressor, begin, keep, end);
      s.indexer_rows->Truncate(keep / 4);
    }
    s.length = keep;
  }
  undo_.reset();
}

void SequenceState::MarkMtp(int64_t rows) {
  const ModelConfig& c = *config_;
  if (rows < 1 || rows > c.sliding_window) throw Error("cannot mark " + std::to_string(rows) + " MTP rows");
  const LayerState& block = layers_[c.num_hidden_layers];
  const int64_t d = c.head_dim;
  mtp_undo_.length = mtp_length();
  mtp_undo_.window.resize(rows * d);
  for (int64_t i = 0; i < rows; ++i) {
    std::copy_n(block.window.begin() + (mtp_undo_.length + i) % c.sliding_window * d, d,
                mtp_undo_.window.begin() + i * d);
  }
}

void SequenceState::RollBackMtp() {
  const ModelConfig& c = *config_;
  LayerState& block = layers_[c.num_hidden_layers];
  const int64_t d = c.head_dim, begin = mtp_undo_.length;
  const int64_t rows = static_cast<int64_t>(mtp_undo_.window.size()) / d;
  if (begin < 0 || block.length < begin || block.length > begin + rows) {
    throw Error("cannot roll the MTP block back: the marked rows do not cover it");
  }
  for (int64_t q = begin; q < block.length; ++q) {
    std::copy_n(mtp_undo_.window.begin() + (q - begin) * d, d, block.window.begin() + q % c.sliding_window * d);
  }
  block.length = begin;
  mtp_undo_.length = -1;
}

}  // namespace dsv4
