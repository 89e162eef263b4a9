#include "engine/batch/batch_output.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "loader/error.h"

namespace dsv4 {
namespace {

using nlohmann::ordered_json;

constexpr int kSidecarVersion = 1;

std::string SystemError(int error) { return std::string(" (") + std::strerror(error) + ")"; }

bool Exists(const std::string& path) {
  struct stat status;
  if (stat(path.c_str(), &status) == 0) return true;
  if (errno == ENOENT) return false;
  throw Error(path + ": cannot look it up" + SystemError(errno));
}

// Writes all of `bytes`, resuming after partial writes and signals; 0 or the
// errno of the failure.
int WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(written);
  }
  return 0;
}

std::string Dump(const ordered_json& value, int indent = -1) {
  return value.dump(indent, ' ', false, ordered_json::error_handler_t::replace);
}

// How a record is found again on resume: by its custom_id, or, for a record
// whose custom_id is null (the request had no usable one), by the input line
// in its error.line.
struct RecordKey {
  std::optional<std::string> id;
  int64_t line = -1;
};

std::optional<RecordKey> KeyOf(const ordered_json& record) {
  const auto id = record.find("custom_id");
  if (id == record.end()) return std::nullopt;
  if (id->is_string()) return RecordKey{id->get<std::string>()};
  const auto error = record.find("error");
  if (!id->is_null() || error == record.end() || !error->is_object()) return std::nullopt;
  const auto line = error->find("line");
  if (line == error->end() || !line->is_number_integer()) return std::nullopt;
  return RecordKey{std::nullopt, line->get<int64_t>()};
}

}  // namespace

std::optional<FingerprintDifference> FirstDifference(const ordered_json& stored, const ordered_json& current,
                                                     const std::string& field) {
  if (!stored.is_object() || !current.is_object()) {
    if (stored == current) return std::nullopt;
    return FingerprintDifference{field, Dump(stored), Dump(current)};
  }
  const auto child = [&](const std::string& key) { return field.empty() ? key : field + "." + key; };
  for (const auto& [key, value] : current.items()) {
    if (!stored.contains(key)) return FingerprintDifference{child(key), "(absent)", Dump(value)};
    if (auto difference = FirstDifference(stored[key], value, child(key))) return difference;
  }
  for (const auto& [key, value] : stored.items()) {
    if (!current.contains(key)) return FingerprintDifference{child(key), Dump(value), "(absent)"};
  }
  return std::nullopt;
}


BatchOutput::BatchOutput(const std::string& path, const BatchFingerprint& fingerprint)
    : path_(path), sidecar_path_(path + ".dsv4"), fingerprint_(fingerprint.fields) {}

BatchOutput::BatchOutput(BatchOutput&& other) noexcept
    : path_(std::move(other.path_)),
      sidecar_path_(std::move(other.sidecar_path_)),
      fingerprint_(std::move(other.fingerprint_)),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      fd_(std::exchange(other.fd_, -1)),
      sidecar_stale_(other.sidecar_stale_),
      size_(other.size_),
      records_(other.records_),
      resumed_(other.resumed_),
      done_ids_(std::move(other.done_ids_)),
      done_lines_(std::move(other.done_lines_)) {}

BatchOutput::~BatchOutput() {
  if (fd_ >= 0) close(fd_);
  if (lock_fd_ >= 0) close(lock_fd_);  // releases the flock
}

BatchOutput BatchOutput::Open(const std::string& path, const BatchFingerprint& fingerprint, bool fresh) {
  BatchOutput output(path, fingerprint);
  output.Lock();
  if (!fresh && Exists(path)) {
    output.Resume();
  } else {
    output.StartFresh();
  }
  return output;
}

void BatchOutput::Lock() {
  // The lock file is never removed: removing it would let a second process
  // lock a new file while the first still holds the old one.
  const std::string lock_path = sidecar_path_ + ".lock";
  lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw Error(lock_path + ": cannot create the output's lock file" + SystemError(errno));
  if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    throw Error(path_ + ": another dsv4 batch is writing this output (" + lock_path +
                " is locked); wait for it or choose another --output");
  }
  // Temp files of sidecar rewrites that a kill interrupted; with the lock
  // held, no writer of this output is alive to own them.
  const std::filesystem::path sidecar(sidecar_path_);
  const std::string stem = sidecar.filename().string() + ".";
  std::error_code ec;
  const std::filesystem::path dir = sidecar.has_parent_path() ? sidecar.parent_path() : ".";
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(stem) && name.ends_with(".tmp")) std::filesystem::remove(entry.path(), ec);
  }
}

void BatchOutput::StartFresh() {
  // The old output goes before the sidecar changes, and the new one appears
  // only after: whenever a kill strikes, an output never sits beside the
  // sidecar of another run (a missing output simply starts over).
  if (unlink(path_.c_str()) != 0 && errno != ENOENT) {
    throw Error(path_ + ": cannot remove the old output" + SystemError(errno));
  }
  WriteSidecar();
  fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path_ + ": cannot create the batch output" + SystemError(errno));
}

void BatchOutput::Resume() {
  ReadSidecar();
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw Error(path_ + ": cannot read the batch output to resume it" + SystemError(errno));
  std::string text;
  int64_t line_number = 0;  // 1-based, as editors count
  std::optional<int64_t> unparsable;  // a complete line that is no record: torn only if it is the last
  while (std::getline(in, text)) {
    ++line_number;
    if (unparsable) {
      throw Error(path_ + ":" + std::to_string(*unparsable) +
                  ": not a JSON record, and not the last line, so no torn write: the output is damaged; "
                  "remove that line or pass --fresh to start over");
    }
    if (in.eof()) break;  // no '\n': a torn write
    const ordered_json record = ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) {
      unparsable = line_number;
      continue;
    }
    const std::optional<RecordKey> key = KeyOf(record);
    if (!key) {
      throw Error(path_ + ":" + std::to_string(line_number) +
                  ": a record with neither a string custom_id nor error.line, so not written by dsv4 batch; "
                  "move the output away or pass --fresh to start over");
    }
    if (key->id) {
      done_ids_.insert(*key->id);
    } else {
      done_lines_.insert(key->line);
    }
    size_ += static_cast<int64_t>(text.size()) + 1;
    ++records_;
  }
  if (in.bad()) throw Error(path_ + ": reading the batch output failed" + SystemError(errno));
  resumed_ = records_;

  fd_ = open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd_ < 0) throw Error(path_ + ": cannot open the batch output to append" + SystemError(errno));
  struct stat status;
  if (fstat(fd_, &status) != 0) throw Error(path_ + ": cannot stat the batch output" + SystemError(errno));
  if (status.st_size != size_ && ftruncate(fd_, size_) != 0) {
    throw Error(path_ + ": cannot cut off the torn last line" + SystemError(errno));
  }
}

BatchSidecar ReadBatchSidecar(const std::string& output_path) {
  const std::string path = output_path + ".dsv4";
  if (!Exists(path)) {
    throw Error(output_path + " exists but " + path + " does not: it was not written by dsv4 batch; move it away or pass --fresh");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot read the sidecar" + SystemError(errno));
  std::stringstream text;
  text << in.rdbuf();
  const ordered_json sidecar = ordered_json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  const auto version = sidecar.find("dsv4_batch");
  const auto fingerprint = sidecar.find("fingerprint");
  const auto lines = sidecar.find("idless_lines");
  if (version == sidecar.end() || *version != kSidecarVersion || fingerprint == sidecar.end() ||
      lines == sidecar.end() || !lines->is_array()) {
    throw Error(path + ": not a dsv4 batch sidecar of version " + std::to_string(kSidecarVersion) +
                " (damaged?); pass --fresh to start over");
  }
  BatchSidecar result{*fingerprint, {}};
  for (const ordered_json& line : *lines) {
    if (!line.is_number_integer()) {
      throw Error(path + ": idless_lines holds " + Dump(line) + ", not a line number (damaged?); pass --fresh to start over");
    }
    result.idless_lines.push_back(line.get<int64_t>());
  }
  return result;
}

void BatchOutput::ReadSidecar() {
  const BatchSidecar sidecar = ReadBatchSidecar(path_);
  if (const auto difference = FirstDifference(sidecar.fingerprint, fingerprint_)) {
    const std::string field = difference->field.empty() ? "its fingerprint" : difference->field;
    throw Error(sidecar_path_ + ": " + path_ + " was computed with " + field + " = " + difference->stored +
                ", but this run has " + difference->current + "; pass --fresh to start over (or write to another output)");
  }
  done_lines_.insert(sidecar.idless_lines.begin(), sidecar.idless_lines.end());
}

void BatchOutput::WriteSidecar() const {
  // Unique names, so that no two writers ever share a temp file.
  static std::atomic<int64_t> counter{0};
  const ordered_json sidecar = {
      {"dsv4_batch", kSidecarVersion}, {"fingerprint", fingerprint_}, {"idless_lines", done_lines_}};
  const std::string text = Dump(sidecar, 2) + "\n";
  const std::string temp =
      sidecar_path_ + "." + std::to_string(getpid()) + "." + std::to_string(counter++) + ".tmp";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(sidecar_path_ + ": cannot write the sidecar" + SystemError(errno));
  int error = WriteAll(fd, text);
  if (!error && fsync(fd) != 0) error = errno;
  if (close(fd) != 0 && !error) error = errno;
  // The rename replaces the sidecar whole: a kill leaves the old one or the new one, never a mix.
  if (!error && rename(temp.c_str(), sidecar_path_.c_str()) != 0) error = errno;
  if (error) {
    unlink(temp.c_str());
    throw Error(sidecar_path_ + ": cannot write the sidecar" + SystemError(error));
  }
}

void BatchOutput::Append(const ordered_json& record) {
  const std::optional<RecordKey> key = KeyOf(record);
  if (!key) {
    throw Error(path_ + ": cannot append a record with neither a string custom_id nor, with custom_id null, "
                "error.line (its input line)");
  }
  // One write(2) to an O_APPEND file: a kill leaves the record whole, absent,
  // or as a torn last line that the next run cuts off.
  const std::string line = Dump(record) + "\n";
  if (const int error = WriteAll(fd_, line)) {
    // Cut off whatever part reached the file, so that a caller who frees disk
    // space and carries on leaves no torn line between whole records.
    const bool cut = ftruncate(fd_, size_) == 0;
    throw Error(path_ + ": cannot append a record" + SystemError(error) +
                (cut ? "" : "; its torn end will be cut off when the run resumes"));
  }
  size_ += static_cast<int64_t>(line.size());
  ++records_;
  if (key->id) {
    done_ids_.insert(*key->id);
    return;
  }
  // The sidecar follows at the next Sync, never ahead of the record: until
  // then the record's own error.line marks its line done on resume, so the
  // line is not redone; the other order could mark done a line whose record
  // never reached the output.
  done_lines_.insert(key->line);
  sidecar_stale_ = true;
}

void BatchOutput::Sync() {
  if (fsync(fd_) != 0) throw Error(path_ + ": cannot flush the batch output to disk" + SystemError(errno));
  if (sidecar_stale_) {
    WriteSidecar();
    sidecar_stale_ = false;
  }
}

}  // namespace dsv4
