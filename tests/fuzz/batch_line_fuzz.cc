// A `dsv4 batch` input file: ScanInput's pass (line count, SHA-256, first
// line of each custom_id) and InputLines' stream, then each line as BatchJob
// reads it (ReadBatchLine, then api::ParseRequest, whose only accepted failure
// is RequestError). The two passes must agree: every line with a string
// custom_id was seen by the scan, at or before that line, so ReadBatchLine
// never reports a changed file.
#include <cstdint>
#include <optional>
#include <string>

#include "engine/batch/batch_input.h"
#include "tests/fuzz/request_defaults.h"

using namespace dsv4;

namespace {

void ReadLine(const std::string& path, const InputScan& scan, int64_t line, const std::string& text) {
  if (IsBlankLine(text)) return;
  std::optional<BatchLine> read;
  try {
    read = ReadBatchLine(path, scan, line, text);
  } catch (const Error& e) {
    fuzz::Check(false, std::string("the scan missed a custom_id that the line has: ") + e.what());
  }
  if (read->kind == BatchLine::Kind::kLineError) return;
  const auto first = scan.first_line_of_id.find(read->custom_id);
  fuzz::Check(first != scan.first_line_of_id.end() && first->second == line,
              "a request is the first line of its custom_id in the scan");
  if (read->kind == BatchLine::Kind::kRequest) fuzz::ParseRequestChecked(read->endpoint, read->body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.Write(data, size);
  fuzz::Expect("batch input", [&] {
    const Shard shard{0, 1};
    const InputScan scan = ScanInput(path, shard);
    fuzz::Check(scan.size_bytes == static_cast<int64_t>(size), "the scan read the whole file");
    fuzz::Check(scan.sha256.size() == 64, "the SHA-256 is 64 hex digits");
    InputLines lines(path, shard);
    int64_t line = 0, count = 0;
    std::string text;
    while (lines.Next(line, text)) {
      fuzz::Check(line == count++, "InputLines numbers lines 0, 1, 2, ...");
      ReadLine(path, scan, line, text);
    }
    fuzz::Check(count == scan.lines, "InputLines and ScanInput count the same lines");
  });
  return 0;
}
