#include "engine/batch/batch_input.h"

#include <openssl/evp.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "loader/error.h"

namespace dsv4 {
namespace {

// The whole of `text` as a decimal integer.
bool ParseWhole(std::string_view text, int64_t& value) {
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  return error == std::errc() && stop == end;
}

// Counts one physical line and remembers its custom_id if it is the id's
// first line.
void ScanLine(std::string_view text, const Shard& shard, InputScan& scan) {
  const int64_t line = scan.lines++;
  if (shard.Owns(line)) ++scan.shard_lines;
  const nlohmann::json request = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!request.is_object()) return;  // the runner reports bad lines when it reaches them
  const auto id = request.find("custom_id");
  if (id != request.end() && id->is_string()) scan.first_line_of_id.emplace(id->get<std::string>(), line);
}

std::string Hex(const unsigned char* bytes, unsigned int size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < size; ++i) {
    hex += kDigits[bytes[i] >> 4];
    hex += kDigits[bytes[i] & 15];
  }
  return hex;
}

}  // namespace

bool IsBlankLine(std::string_view text) {
  return text.find_first_not_of(" \t\r") == std::string_view::npos;
}

std::string Shard::ToString() const { return std::to_string(index) + "/" + std::to_string(count); }

Shard ParseShard(std::string_view text) {
  const std::string where = "--shard \"" + std::string(text) + "\": ";
  const size_t slash = text.find('/');
  Shard shard;
  if (slash == std::string_view::npos || !ParseWhole(text.substr(0, slash), shard.index) ||
      !ParseWhole(text.substr(slash + 1), shard.count)) {
    throw Error(where + "expected I/N, two whole numbers (0/4 is the first of four shards)");
  }
  if (shard.count < 1) throw Error(where + "the shard count N must be at least 1");
  if (shard.index < 0 || shard.index >= shard.count) {
    throw Error(where + "the shard index I must be in 0.." + std::to_string(shard.count - 1));
  }
  return shard;
}

InputScan ScanInput(const std::string& path, const Shard& shard) {
  const std::unique_ptr<FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(path + ": cannot open the batch input (" + std::strerror(errno) + ")");
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> digest(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  const auto check_digest = [&](bool ok) {
    if (!ok) throw Error(path + ": OpenSSL failed to compute the SHA-256 of the batch input");
  };
  check_digest(digest && EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr) == 1);

  InputScan scan;
  std::vector<char> chunk(1 << 20);
  std::string line;  // the line being read, which may span chunks
  size_t size;
  while ((size = std::fread(chunk.data(), 1, chunk.size(), file.get())) > 0) {
    check_digest(EVP_DigestUpdate(digest.get(), chunk.data(), size) == 1);
    scan.size_bytes += static_cast<int64_t>(size);
    const char* end = chunk.data() + size;
    for (const char* begin = chunk.data(); begin < end;) {
      const char* newline = static_cast<const char*>(std::memchr(begin, '\n', end - begin));
      if (!newline) {
        line.append(begin, end);
        break;
      }
      line.append(begin, newline);
      ScanLine(line, shard, scan);
      line.clear();
      begin = newline + 1;
    }
  }
  if (std::ferror(file.get())) throw Error(path + ": reading the batch input failed (" + std::strerror(errno) + ")");
  if (!line.empty()) ScanLine(line, shard, scan);

  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int hash_size = 0;
  check_digest(EVP_DigestFinal_ex(digest.get(), hash, &hash_size) == 1);
  scan.sha256 = Hex(hash, hash_size);
  return scan;
}

InputLines::InputLines(const std::string& path, const Shard& shard) : path_(path), shard_(shard), in_(path) {
  if (!in_) throw Error(path + ": cannot open the batch input (" + std::strerror(errno) + ")");
}

bool InputLines::Next(int64_t& line, std::string& text) {
  while (std::getline(in_, text)) {
    const int64_t number = next_line_++;
    if (!shard_.Owns(number)) continue;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    line = number;
    return true;
  }
  if (in_.bad()) throw Error(path_ + ": reading the batch input failed (" + std::strerror(errno) + ")");
  return false;
}

BatchLine ReadBatchLine(const std::string& input_path, const InputScan& scan, int64_t line, const std::string& text) {
  BatchLine result;
  const auto line_error = [&](std::string code, std::string message) {
    result.kind = BatchLine::Kind::kLineError;
    result.code = std::move(code);
    result.message = std::move(message);
    return result;
  };
  nlohmann::ordered_json value;
  try {
    value = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::ordered_json::exception& e) {
    return line_error("invalid_json", std::string("not valid JSON: ") + e.what());
  }
  if (!value.is_object()) return line_error("invalid_request", "not a JSON object");
  const auto id = value.find("custom_id");
  if (id == value.end() || !id->is_string()) return line_error("missing_custom_id", "custom_id must be a string");
  result.custom_id = id->get<std::string>();
  const auto first_use = scan.first_line_of_id.find(result.custom_id);
  if (first_use == scan.first_line_of_id.end()) {
    throw Error(input_path + ": the file changed while the batch was reading it (line " + std::to_string(line + 1) +
                " is new); run again on a file that stays as it is");
  }
  if (first_use->second != line) {
    return line_error("duplicate_custom_id",
                      "custom_id \"" + result.custom_id + "\" repeats line " + std::to_string(first_use->second + 1));
  }
  const auto refuse = [&](std::string message, std::string param) {
    result.kind = BatchLine::Kind::kRefused;
    result.message = std::move(message);
    result.param = std::move(param);
    return result;
  };
  const auto method = value.find("method");
  if (method != value.end() && *method != "POST") return refuse("method must be POST", "method");
  const auto url = value.find("url");
  const std::optional<api::Endpoint> endpoint =
      url != value.end() && url->is_string() ? api::EndpointForUrl(url->get<std::string>()) : std::nullopt;
  if (!endpoint) return refuse("url must be /v1/chat/completions or /v1/completions", "url");
  const auto body = value.find("body");
  if (body == value.end() || !body->is_object()) return refuse("body must be a JSON object", "body");
  result.endpoint = *endpoint;
  result.body = std::move(*body);
  return result;
}

}  // namespace dsv4
