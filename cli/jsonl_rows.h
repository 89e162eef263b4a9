// The JSONL row loop shared by `dsv4 tokenize` and `dsv4 render`: one JSON
// object per line in, the same object with fields added out, in input order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace dsv4::cli {

// Fields a row gets: key and value, the value already written as JSON text
// (a million-id array is much cheaper to write directly than as a JSON tree).
using JsonFields = std::vector<std::pair<std::string, std::string>>;

// Reads rows from `input_path` (stdin when empty) in batches of a few MB,
// calls `update(row, fields)` for the rows of a batch in parallel (OpenMP),
// and writes each row with `fields` set, in input order, as Python's
// `row.update(fields); json.dumps(row, ensure_ascii=False)` would (a key the
// row already has keeps its place). Blank lines are skipped. A row that is
// not a JSON object (or not UTF-8), or for which `update` throws, stops the
// run with dsv4::Error("line N: ...") after the rows before it were written.
void MapJsonlRows(const std::string& input_path,
                  const std::function<void(const nlohmann::ordered_json& row, JsonFields& fields)>& update);

// The JSON text of a list of token ids: "[1, 2, 3]".
std::string IdsJson(const std::vector<int32_t>& ids);

}  // namespace dsv4::cli
