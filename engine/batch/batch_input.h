// Reading the input of `dsv4 batch`: OpenAI Batch API JSONL, one request a
// line. Several processes may split one input file into shards by line
// number, so no process needs another's help to know which lines are its
// own. The input is scanned once before any work, for the fingerprint that
// ties a resumed output to this exact file and for the first line of every
// custom_id (a repeated id is answered once, at its first line, by whichever
// shard owns that line); then the shard's lines are streamed, one at a time,
// since a night's input need not fit in memory.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/api/openai_request.h"

namespace dsv4 {

// A shard of the input: line k (0-based, counting every physical line, blank
// ones too) belongs to shard k mod count.
struct Shard {
  int64_t index = 0;
  int64_t count = 1;

  bool Owns(int64_t line) const { return line % count == index; }
  std::string ToString() const;  // "I/N", as ParseShard reads it
};

// A line of only spaces, tabs or '\r' is not a request: it is skipped, not
// answered (files often end with an empty line).
bool IsBlankLine(std::string_view text);

// "I/N" with 0 <= I < N; throws dsv4::Error("--shard ...") otherwise.
Shard ParseShard(std::string_view text);

// One pass over the whole input file.
struct InputScan {
  int64_t size_bytes = 0;
  std::string sha256;        // lowercase hex of the whole file
  int64_t lines = 0;         // physical lines (a final line without '\n' counts; an empty file has 0)
  int64_t shard_lines = 0;   // lines the shard owns
  // custom_id -> the first line (0-based) where it appears, over every shard's
  // lines, for lines whose JSON is an object with a string custom_id. Memory
  // grows with the distinct ids only (fine for 500,000 lines).
  std::unordered_map<std::string, int64_t> first_line_of_id;
};

// Reads `path` in chunks; throws dsv4::Error naming it if it cannot be read.
InputScan ScanInput(const std::string& path, const Shard& shard);

// The lines of a shard in file order, one at a time. Lines end at '\n'; a
// trailing '\r' is stripped, so CRLF files read like LF ones.
class InputLines {
 public:
  InputLines(const std::string& path, const Shard& shard);  // throws naming the path

  // The next line the shard owns, with its 0-based physical line number;
  // false at the end of the file.
  bool Next(int64_t& line, std::string& text);

 private:
  std::string path_;
  Shard shard_;
  std::ifstream in_;
  int64_t next_line_ = 0;
};

// One input line, checked as far as it can be without the model and the API
// defaults: a line error (nothing to key its answer by but the line), or a
// request keyed by its custom_id, refused as the API refuses it or ready for
// api::ParseRequest.
struct BatchLine {
  enum class Kind { kLineError, kRefused, kRequest };
  Kind kind = Kind::kRequest;
  std::string code;       // kLineError: invalid_json, invalid_request, missing_custom_id, duplicate_custom_id
  std::string message;    // kLineError, kRefused
  std::string param;      // kRefused: the field at fault (method, url, body)
  std::string custom_id;  // kRefused, kRequest
  api::Endpoint endpoint = api::Endpoint::kChatCompletions;  // kRequest
  nlohmann::ordered_json body;                               // kRequest
};

// Reads line `line` (0-based, not blank) of the input `scan` was taken of. A
// custom_id the scan did not see means the file changed since: dsv4::Error
// naming `input_path`.
BatchLine ReadBatchLine(const std::string& input_path, const InputScan& scan, int64_t line, const std::string& text);

}  // namespace dsv4
