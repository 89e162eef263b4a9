// The output of `dsv4 batch`: one JSONL record per input line, in the order
// requests complete, built to survive SIGKILL at any moment during a night's
// run. Each record reaches the file in one append, so a kill leaves at most a
// torn last line, which the next run cuts off and redoes; every whole record
// is kept and none is written twice.
//
// A sidecar beside the output (OUT + ".dsv4") records what the output was
// computed from, so that a resumed run never mixes another input, model or
// set of defaults into one file, and the input lines of records that have no
// custom_id to key them by. A lock file (OUT + ".dsv4.lock", flock) keeps a
// second process from writing the same output at once.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4 {

// What an output was computed from, e.g. {"input": {"size": .., "sha256": ..},
// "model": .., "numerics": .., "shard": "0/1", "defaults": {..}}. A resumed run
// must match it field for field (key order aside).
struct BatchFingerprint {
  nlohmann::ordered_json fields;
};

// The sidecar of the output at `output_path`: what the output was computed
// from, and the input lines of its id-less records. Throws dsv4::Error naming
// the sidecar when it is missing or damaged.
struct BatchSidecar {
  nlohmann::ordered_json fingerprint;
  std::vector<int64_t> idless_lines;
};
BatchSidecar ReadBatchSidecar(const std::string& output_path);

// The first field where two fingerprints differ, as a dotted path (e.g.
// input.sha256; empty when the two are not objects) with both values as
// JSON. Objects are compared key by key, so key order does not matter.
struct FingerprintDifference {
  std::string field;
  std::string stored;
  std::string current;
};
std::optional<FingerprintDifference> FirstDifference(const nlohmann::ordered_json& stored,
                                                     const nlohmann::ordered_json& current,
                                                     const std::string& field = "");

class BatchOutput {
 public:
  // Opens `path` for a run, first taking its lock (an Error if another
  // process holds it) and removing sidecar temp files a killed run left. If
  // `fresh` or the output does not exist, starts an empty output and writes
  // the sidecar. Otherwise resumes: the sidecar must
  // exist and hold `fingerprint`; every complete line of the output that is a
  // JSON object is a done record; a torn last line (no '\n', or not JSON) is
  // cut off. Throws dsv4::Error naming the file (and line) for a missing or
  // damaged sidecar, another fingerprint, a damaged line before the last, or
  // an I/O failure.
  static BatchOutput Open(const std::string& path, const BatchFingerprint& fingerprint, bool fresh);

  BatchOutput(BatchOutput&& other) noexcept;
  ~BatchOutput();

  // A record with this custom_id is in the output.
  bool DoneId(const std::string& custom_id) const { return done_ids_.count(custom_id) > 0; }
  // A record without a custom_id for this 0-based input line is in the output.
  bool DoneLine(int64_t line) const { return done_lines_.count(line) > 0; }
  int64_t records() const { return records_; }  // complete records: resumed + appended
  int64_t resumed() const { return resumed_; }   // records found by Open

  // Appends `record` as one compact line (UTF-8 as is, invalid UTF-8
  // replaced). Its "custom_id" is a string, or null for a request without a
  // usable id, in which case error.line must hold the request's 0-based input
  // line: {"custom_id": null, "error": {"code": .., "message": .., "line": N}}.
  // Throws dsv4::Error naming the path on an I/O failure (disk full, ...),
  // after cutting off any part of the record that was written.
  void Append(const nlohmann::ordered_json& record);

  // Flushes the output to disk and brings the sidecar's list of id-less
  // lines up to date. A SIGKILL loses nothing written already (the records
  // themselves say their lines); a power loss may lose what was appended
  // since the last Sync.
  void Sync();

 private:
  BatchOutput(const std::string& path, const BatchFingerprint& fingerprint);
  void Lock();
  void StartFresh();
  void Resume();
  void ReadSidecar();
  void WriteSidecar() const;

  std::string path_;
  std::string sidecar_path_;
  nlohmann::ordered_json fingerprint_;
  int lock_fd_ = -1;    // flock held while open
  int fd_ = -1;         // O_APPEND
  bool sidecar_stale_ = false;  // id-less lines appended since the sidecar was written
  int64_t size_ = 0;    // bytes of complete records in the output
  int64_t records_ = 0;
  int64_t resumed_ = 0;
  std::unordered_set<std::string> done_ids_;
  std::set<int64_t> done_lines_;  // ordered so the sidecar lists them sorted
};

}  // namespace dsv4
