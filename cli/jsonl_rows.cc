#include "cli/jsonl_rows.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "engine/text/python_json.h"
#include "engine/text/utf8.h"
#include "loader/error.h"

namespace dsv4::cli {
namespace {

constexpr size_t kBatchBytes = size_t{4} << 20;

// nlohmann's messages start with "[json.exception.parse_error.101] parse error
// at line 1, column 7: ..."; a row is one line, so keep "column 7: ...".
std::string JsonErrorMessage(const std::string& what) {
  std::string message = what.substr(what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2);
  const size_t line = message.find("line 1, ");
  if (line != std::string::npos) message.erase(line, 8);
  // The "last read" excerpt can hold the very byte that is not UTF-8.
  return "invalid JSON: " + ReplaceInvalidUtf8(message);
}

// json.dumps of `row` after row.update(fields).
void AppendRow(const nlohmann::ordered_json& row, const JsonFields& fields, std::string& out) {
  std::vector<bool> written(fields.size());
  out.push_back('{');
  bool first = true;
  auto key = [&](const std::string& name) {
    if (!first) out += ", ";
    first = false;
    AppendPythonJson(name, out);
    out += ": ";
  };
  for (const auto& [name, value] : row.items()) {
    key(name);
    const auto field = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.first == name; });
    if (field == fields.end()) {
      AppendPythonJson(value, out);
    } else {
      out += field->second;
      written[field - fields.begin()] = true;
    }
  }
  for (size_t k = 0; k < fields.size(); ++k) {
    if (written[k]) continue;
    key(fields[k].first);
    out += fields[k].second;
  }
  out += "}\n";
}

bool IsBlank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::string IdsJson(const std::vector<int32_t>& ids) {
  std::string out;
  out.reserve(ids.size() * 8 + 2);
  out.push_back('[');
  char buffer[16];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), ids[i]).ptr);
  }
  out.push_back(']');
  return out;
}

void MapJsonlRows(const std::string& input_path,
                  const std::function<void(const nlohmann::ordered_json& row, JsonFields& fields)>& update) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, &std::fclose);
  FILE* in = stdin;
  if (!input_path.empty()) {
    file.reset(std::fopen(input_path.c_str(), "rb"));
    if (!file) throw Error(input_path + ": cannot open");
    in = file.get();
  }
  const std::string input_name = input_path.empty() ? "standard input" : input_path;

  std::string buffer;
  std::vector<char> chunk(kBatchBytes);
  bool eof = false;
  int64_t next_line_number = 1;
  while (!eof || !buffer.empty()) {
    // Read until the buffer holds a full batch ending in a newline, or the input ends.
    bool has_newline = buffer.find('\n') != std::string::npos;
    while (!eof && (buffer.size() < kBatchBytes || !has_newline)) {
      const size_t n = std::fread(chunk.data(), 1, chunk.size(), in);
      if (std::memchr(chunk.data(), '\n', n)) has_newline = true;
      buffer.append(chunk.data(), n);
      if (n < chunk.size()) {
        if (std::ferror(in)) throw Error(input_name + ": read failed");
        eof = true;
      }
    }
    const size_t batch_end = eof ? buffer.size() : buffer.rfind('\n') + 1;

    std::vector<std::string_view> lines;
    std::vector<int64_t> line_numbers;
    const std::string_view batch(buffer.data(), batch_end);
    for (size_t start = 0; start < batch.size();) {
      size_t end = batch.find('\n', start);
      if (end == std::string_view::npos) end = batch.size();
      const std::string_view line = batch.substr(start, end - start);
      if (!IsBlank(line)) {
        lines.push_back(line);
        line_numbers.push_back(next_line_number);
      }
      ++next_line_number;
      start = end + 1;
    }

    const int64_t count = static_cast<int64_t>(lines.size());
    std::vector<std::string> outputs(count), errors(count);
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < count; ++i) {
      try {
        nlohmann::ordered_json row;
        try {
          row = nlohmann::ordered_json::parse(lines[i]);
        } catch (const nlohmann::ordered_json::parse_error& e) {
          throw Error(JsonErrorMessage(e.what()));
        }
        if (!row.is_object()) throw Error("expected a JSON object");
        JsonFields fields;
        update(row, fields);
        AppendRow(row, fields, outputs[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
        if (errors[i].empty()) errors[i] = "failed";
      }
    }

    for (int64_t i = 0; i < count; ++i) {
      if (!errors[i].empty()) {
        std::fflush(stdout);
        throw Error(input_name + ": line " + std::to_string(line_numbers[i]) + ": " + errors[i]);
      }
      if (std::fwrite(outputs[i].data(), 1, outputs[i].size(), stdout) != outputs[i].size()) {
        throw Error("writing to standard output failed");
      }
    }
    buffer.erase(0, batch_end);
  }
  if (std::fflush(stdout) != 0) throw Error("writing to standard output failed");
}

}  // namespace dsv4::cli
