#include "engine/model/session_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "loader/error.h"

namespace dsv4 {
namespace {

constexpr char kMagic[8] = {'D', 'S', 'V', '4', 'S', 'E', 'S', 'S'};
constexpr uint32_t kVersion = 1;

// 64-bit multiply-xorshift hash over bytes, fed incrementally.
class Hasher {
 public:
  void Update(const void* data, size_t size) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < size; ++i) {
      word_ |= uint64_t{p[i]} << (8 * fill_);
      if (++fill_ == 8) Mix();
    }
  }
  uint64_t Digest() {
    Hasher copy = *this;
    if (copy.fill_) copy.Mix();
    uint64_t h = copy.state_ ^ (copy.length_ * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    return h;
  }

 private:
  void Mix() {
    state_ = (state_ ^ word_) * 0x100000001B3ull;
    state_ ^= state_ >> 29;
    word_ = 0;
    fill_ = 0;
    ++length_;
  }
  uint64_t state_ = 0xCBF29CE484222325ull;
  uint64_t word_ = 0;
  uint64_t length_ = 0;
  int fill_ = 0;
};

// Writes the session to `temp` through a buffer, reporting failures (a full
// disk, a file-size limit) against `target`, the file the caller asked for.
class Writer {
 public:
  Writer(const std::string& temp, const std::string& target) : target_(target) {
    fd_ = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail("cannot create " + temp);
    buffer_.reserve(kBufferBytes);
  }
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  void Bytes(const void* data, size_t size) {
    hasher_.Update(data, size);
    Append(data, size);
  }
  template <typename T>
  void Value(T v) { Bytes(&v, sizeof v); }
  template <typename T>
  void Vector(const std::vector<T>& v) {
    Value<uint64_t>(v.size());
    Bytes(v.data(), v.size() * sizeof(T));
  }
  // The checksum, then everything on disk (fsync): the rename that follows
  // must never publish a file whose bytes a crash could still lose.
  void Finish() {
    const uint64_t checksum = hasher_.Digest();
    Append(&checksum, sizeof checksum);
    Flush();
    if (::fsync(fd_) != 0) Fail("writing failed");
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) Fail("writing failed");
  }

 private:
  static constexpr size_t kBufferBytes = size_t{1} << 20;

  [[noreturn]] void Fail(const std::string& what) const {
    throw Error(target_ + ": cannot save the session: " + what + " (" + std::strerror(errno) + ")");
  }
  void Append(const void* data, size_t size) {
    const char* bytes = static_cast<const char*>(data);
    if (buffer_.size() + size > kBufferBytes) Flush();
    if (size >= kBufferBytes) {
      WriteAll(bytes, size);
    } else {
      buffer_.insert(buffer_.end(), bytes, bytes + size);
    }
  }
  void Flush() {
    WriteAll(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  void WriteAll(const char* data, size_t size) {
    while (size > 0) {
      const ssize_t n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0) errno = ENOSPC;
        Fail("writing failed");
      }
      data += n;
      size -= static_cast<size_t>(n);
    }
  }

  std::string target_;
  int fd_ = -1;
  std::vector<char> buffer_;
  Hasher hasher_;
};

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw Error(path + ": cannot open session file");
    in_.seekg(0, std::ios::end);
    size_ = in_.tellg();
    in_.seekg(0);
  }
  void Bytes(void* data, size_t size) {
    if (size > size_ - consumed_) throw Error(path_ + ": session file is truncated");
    in_.read(static_cast<char*>(data), size);
    if (!in_) throw Error(path_ + ": session file is truncated");
    hasher_.Update(data, size);
    consumed_ += size;
  }
  template <typename T>
  T Value() {
    T v;
    Bytes(&v, sizeof v);
    return v;
  }
  template <typename T>
  std::vector<T> Vector(uint64_t max_elements) {
    const uint64_t n = Value<uint64_t>();
    if (n > max_elements || n * sizeof(T) > size_ - consumed_) {
      throw Error(path_ + ": session file is truncated or corrupted");
    }
    std::vector<T> v(n);
    Bytes(v.data(), n * sizeof(T));
    return v;
  }
  void VerifyChecksum() {
    const uint64_t expected = hasher_.Digest();
    uint64_t stored;
    if (size_ - consumed_ != sizeof stored) throw Error(path_ + ": session file has trailing or missing bytes");
    in_.read(reinterpret_cast<char*>(&stored), sizeof stored);
    if (!in_ || stored != expected) throw Error(path_ + ": session file is corrupted (checksum mismatch)");
  }
  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0, consumed_ = 0;
  Hasher hasher_;
};

struct Header {
  uint32_t version;
  uint32_t numerics;
  uint64_t model_identity;
};

Header ReadHeader(Reader& r) {
  char magic[8];
  r.Bytes(magic, 8);
  if (std::memcmp(magic, kMagic, 8) != 0) throw Error(r.path() + ": not a dsv4 session file");
  Header h;
  h.version = r.Value<uint32_t>();
  if (h.version != kVersion) {
    throw Error(r.path() + ": session format version " + std::to_string(h.version) + " (this dsv4 reads " +
                std::to_string(kVersion) + ")");
  }
  h.numerics = r.Value<uint32_t>();
  h.model_identity = r.Value<uint64_t>();
  return h;
}

// Either row store: KvRowStore or IndexerRows.
template <typename Store>
void WriteStore(Writer& w, const Store* store) {
  const uint64_t rows = store ? store->size() : 0;
  w.Value<uint64_t>(rows);
  if (!rows) return;
  w.Value<uint64_t>(store->codec().bytes_per_row());
  constexpr int64_t kBatch = 4096;
  std::vector<uint8_t> buffer;
  for (int64_t begin = 0; begin < static_cast<int64_t>(rows); begin += kBatch) {
    const int64_t count = std::min<int64_t>(kBatch, rows - begin);
    buffer.resize(count * store->codec().bytes_per_row());
    store->ReadEncoded(begin, count, buffer.data());
    w.Bytes(buffer.data(), buffer.size());
  }
}

template <typename Store>
void ReadStore(Reader& r, Store* store, int64_t max_rows) {
  const uint64_t rows = r.Value<uint64_t>();
  if (!rows) return;
  if (!store || static_cast<int64_t>(rows) > max_rows) throw Error(r.path() + ": session file is corrupted");
  const uint64_t row_bytes = r.Value<uint64_t>();
  if (static_cast<int64_t>(row_bytes) != store->codec().bytes_per_row()) {
    throw Error(r.path() + ": session stores KV rows of " + std::to_string(row_bytes) + " bytes; this run uses " +
                std::to_string(store->codec().bytes_per_row()) + " (another KV layout)");
  }
  constexpr int64_t kBatch = 4096;
  std::vector<uint8_t> buffer;
  for (int64_t begin = 0; begin < static_cast<int64_t>(rows); begin += kBatch) {
    const int64_t count = std::min<int64_t>(kBatch, rows - begin);
    buffer.resize(count * row_bytes);
    r.Bytes(buffer.data(), buffer.size());
    store->AppendEncoded(buffer.data(), count);
  }
}

void ReadInto(Reader& r, std::vector<float>& target) {
  const std::vector<float> v = r.Vector<float>(target.size());
  if (v.size() != target.size()) throw Error(r.path() + ": session does not match this model's state shapes");
  target = v;
}

}  // namespace

uint64_t ModelIdentity(const Checkpoint& checkpoint) {
  Hasher h;
  const std::string config = checkpoint.config().ToJson().dump();
  h.Update(config.data(), config.size());
  for (const TensorSpec& spec : checkpoint.schema()) {
    const TensorView& v = checkpoint.Get(spec.name);
    h.Update(spec.name.data(), spec.name.size());
    const uint8_t dtype = static_cast<uint8_t>(v.dtype);
    h.Update(&dtype, 1);
    h.Update(v.shape.data(), v.shape.size() * sizeof(int64_t));
    h.Update(&v.file_offset, sizeof v.file_offset);
    h.Update(v.data, std::min<size_t>(v.bytes, 16));
  }
  return h.Digest();
}

void SaveSession(const std::string& path, const SequenceState& state, const SessionContents& contents,
                 uint64_t model_identity) {
  // A name of this writer's own: two processes saving the same session
  // (two runs sharing a --session-dir) must not write into one file.
  static std::atomic<uint64_t> counter{0};
  const std::string temp = path + "." + std::to_string(getpid()) + "." + std::to_string(counter++) + ".partial";
  try {
    Writer w(temp, path);
    w.Bytes(kMagic, 8);
    w.Value<uint32_t>(kVersion);
    w.Value<uint32_t>(static_cast<uint32_t>(state.numerics()));
    w.Value<uint64_t>(model_identity);
    w.Vector(contents.tokens);
    w.Vector(contents.last_logits);
    w.Value<uint64_t>(state.num_layers());
    for (int64_t L = 0; L < state.num_layers(); ++L) {
      const LayerState& s = state.layer(L);
      w.Value<int64_t>(s.length);
      w.Vector(s.window);
      w.Vector(s.compressor.kv);
      w.Vector(s.compressor.score);
      w.Vector(s.indexer_compressor.kv);
      w.Vector(s.indexer_compressor.score);
      WriteStore(w, s.compressed.get());
      WriteStore(w, s.indexer_rows.get());
    }
    w.Finish();
  } catch (...) {
    std::remove(temp.c_str());
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    throw Error(path + ": cannot save the session (" + ec.message() + ")");
  }
}

SessionContents LoadSession(const std::string& path, SequenceState& state, uint64_t model_identity) {
  if (state.length() != 0) throw Error(path + ": a session can only be loaded into an empty sequence");
  Reader r(path);
  const Header header = ReadHeader(r);
  if (header.model_identity != model_identity) {
    throw Error(path + ": session was saved with another model (config or tensor index differ)");
  }
  if (header.numerics != static_cast<uint32_t>(state.numerics())) {
    throw Error(path + ": session was saved with --numerics " +
                NumericsName(static_cast<Numerics>(header.numerics & 1)) + ", this run uses " +
                NumericsName(state.numerics()));
  }
  const ModelConfig& c = state.config();
  SessionContents contents;
  contents.tokens = r.Vector<int32_t>(c.max_position_embeddings);
  contents.last_logits = r.Vector<float>(c.vocab_size);
  if (r.Value<uint64_t>() != static_cast<uint64_t>(state.num_layers())) {
    throw Error(path + ": session has another number of layers");
  }
  for (int64_t L = 0; L < state.num_layers(); ++L) {
    LayerState& s = state.layer(L);
    s.length = r.Value<int64_t>();
    if (s.length < 0 || s.length > c.max_position_embeddings) throw Error(path + ": session file is corrupted");
    ReadInto(r, s.window);
    ReadInto(r, s.compressor.kv);
    ReadInto(r, s.compressor.score);
    ReadInto(r, s.indexer_compressor.kv);
    ReadInto(r, s.indexer_compressor.score);
    const int64_t ratio = c.CompressRatio(L);
    ReadStore(r, s.compressed.get(), ratio ? s.length / ratio : 0);
    ReadStore(r, s.indexer_rows.get(), ratio == 4 ? s.length / 4 : 0);
  }
  r.VerifyChecksum();
  if (static_cast<int64_t>(contents.tokens.size()) != state.length()) {
    throw Error(path + ": session token count does not match its state");
  }
  state.EnforceKvBudget();
  return contents;
}

bool SessionChecksumHolds(const std::string& path) {
  try {
    Reader r(path);
    std::vector<char> chunk(1 << 20);
    for (uint64_t left = r.size() - sizeof(uint64_t); left > 0;) {
      const uint64_t n = std::min<uint64_t>(left, chunk.size());
      r.Bytes(chunk.data(), n);
      left -= n;
    }
    r.VerifyChecksum();
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<int32_t> PeekSessionTokens(const std::string& path, uint64_t model_identity, Numerics numerics) {
  try {
    Reader r(path);
    const Header header = ReadHeader(r);
    if (header.model_identity != model_identity || header.numerics != static_cast<uint32_t>(numerics)) return {};
    return r.Vector<int32_t>(uint64_t{1} << 32);
  } catch (const Error&) {
    return {};
  }
}

}  // namespace dsv4
