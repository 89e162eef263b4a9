#include "engine/batch/batch_merge.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "engine/batch/batch_input.h"
#include "engine/batch/batch_output.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

// Records are keyed like resume keys them: by custom_id, or by the input
// line for the id-less ones.
std::string IdKey(const std::string& custom_id) { return "i" + custom_id; }
std::string LineKey(int64_t line) { return "l" + std::to_string(line); }
std::string Describe(const std::string& key) {
  if (key[0] == 'i') return "custom_id \"" + key.substr(1) + "\"";
  return "input line " + std::to_string(std::stoll(key.substr(1)) + 1) + " (no usable custom_id)";
}

// At most ten items, then how many more.
std::string Listing(const std::vector<std::string>& items) {
  std::string text;
  for (size_t i = 0; i < items.size() && i < 10; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > 10) text += " and " + std::to_string(items.size() - 10) + " more";
  return text;
}

struct Location {
  size_t part;
  int64_t offset;
  int64_t size;  // '\n' included
};

// The parts' sidecars: one input, one model and set of defaults, shards
// 0..N-1 each once. Returns N.
int64_t CheckShards(const std::vector<std::string>& parts, const InputScan& scan, const std::string& input) {
  Json reference;
  std::vector<std::string> owner;
  for (const std::string& part : parts) {
    if (!std::filesystem::exists(part)) throw Error(part + ": not found (a part to merge)");
    Json fingerprint = ReadBatchSidecar(part).fingerprint;
    const Json expected_input = {{"size", scan.size_bytes}, {"sha256", scan.sha256}};
    if (!fingerprint.contains("input") || FirstDifference(fingerprint["input"], expected_input)) {
      throw Error(part + ": computed from another input than " + input + " (its sidecar's input is " +
                  fingerprint.value("input", Json()).dump() + ", " + input + " is " + expected_input.dump() + ")");
    }
    if (!fingerprint.contains("shard") || !fingerprint["shard"].is_string()) {
      throw Error(part + ".dsv4: has no shard (damaged?)");
    }
    const Shard shard = ParseShard(fingerprint["shard"].get<std::string>());
    fingerprint.erase("shard");
    if (owner.empty()) {
      reference = fingerprint;
      owner.resize(shard.count);
    } else if (const auto difference = FirstDifference(reference, fingerprint)) {
      throw Error(part + ": computed with " + difference->field + " = " + difference->current + ", but " + parts[0] +
                  " with " + difference->stored + "; all shards must be run with the same model and options");
    }
    if (shard.count != static_cast<int64_t>(owner.size())) {
      throw Error(part + " is shard " + shard.ToString() + ", but " + parts[0] + " is one of " +
                  std::to_string(owner.size()) + " shards");
    }
    if (!owner[shard.index].empty()) {
      throw Error("shard " + shard.ToString() + " is given twice: " + owner[shard.index] + " and " + part);
    }
    owner[shard.index] = part;
  }
  std::vector<std::string> missing;
  for (size_t i = 0; i < owner.size(); ++i) {
    if (owner[i].empty()) missing.push_back(std::to_string(i) + "/" + std::to_string(owner.size()));
  }
  if (!missing.empty()) throw Error("shards missing: " + Listing(missing) + " (give every part of the batch)");
  return static_cast<int64_t>(owner.size());
}

// Where each record of the parts is; a torn last line means that shard's
// run did not finish.
std::map<std::string, Location> IndexRecords(const std::vector<std::string>& parts) {
  std::map<std::string, Location> records;
  std::vector<std::string> repeated;
  for (size_t p = 0; p < parts.size(); ++p) {
    std::ifstream in(parts[p], std::ios::binary);
    if (!in) throw Error(parts[p] + ": cannot read it (" + std::strerror(errno) + ")");
    std::string text;
    int64_t offset = 0, number = 0;
    while (std::getline(in, text)) {
      ++number;
      if (in.eof()) {
        throw Error(parts[p] + ": its last line is torn (the run was killed); run its shard again to finish it");
      }
      const Json record = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      const Json custom_id = record.is_object() ? record.value("custom_id", Json()) : Json();
      std::string key;
      if (custom_id.is_string()) {
        key = IdKey(custom_id.get<std::string>());
      } else if (record.is_object() && record["error"].is_object() && record["error"]["line"].is_number_integer()) {
        key = LineKey(record["error"]["line"].get<int64_t>());
      } else {
        throw Error(parts[p] + ":" + std::to_string(number) + ": not a dsv4 batch record");
      }
      const int64_t size = static_cast<int64_t>(text.size()) + 1;
      if (!records.emplace(key, Location{p, offset, size}).second) {
        repeated.push_back(Describe(key) + " (" + parts[records.at(key).part] + ", " + parts[p] + ")");
      }
      offset += size;
    }
  }
  if (!repeated.empty()) throw Error("answered twice: " + Listing(repeated));
  return records;
}

// The record each input line needs, in input order: blank lines need none;
// a line whose custom_id is a string used there first needs that id; every
// other line (not JSON, no custom_id, a repeated one) an id-less record.
std::vector<std::string> Needed(const std::string& input, const InputScan& scan) {
  std::vector<std::string> keys;
  InputLines lines(input, Shard{});
  int64_t line = 0;
  std::string text;
  while (lines.Next(line, text)) {
    if (IsBlankLine(text)) continue;
    const Json request = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    const Json custom_id = request.is_object() ? request.value("custom_id", Json()) : Json();
    if (custom_id.is_string()) {
      const auto first = scan.first_line_of_id.find(custom_id.get<std::string>());
      if (first != scan.first_line_of_id.end() && first->second == line) {
        keys.push_back(IdKey(custom_id.get<std::string>()));
        continue;
      }
    }
    keys.push_back(LineKey(line));
  }
  return keys;
}

void WriteMerged(const std::vector<std::string>& parts, const std::vector<Location>& order, const std::string& output) {
  std::string temp = output + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) throw Error(output + ": cannot create a temporary file beside it (" + std::strerror(errno) + ")");
  fchmod(fd, 0644);  // mkstemp's 0600 would make the merged answers private
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  std::vector<std::unique_ptr<std::ifstream>> in;
  for (const std::string& part : parts) in.push_back(std::make_unique<std::ifstream>(part, std::ios::binary));
  std::string buffer;
  for (const Location& at : order) {
    buffer.resize(at.size);
    in[at.part]->seekg(at.offset);
    in[at.part]->read(buffer.data(), at.size);
    out.write(buffer.data(), at.size);
  }
  out.close();
  const bool ok = out && fsync(fd) == 0;
  close(fd);
  if (!ok || std::rename(temp.c_str(), output.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::filesystem::remove(temp);
    throw Error(output + ": cannot write the merged output (" + reason + ")");
  }
}

}  // namespace

MergeSummary MergeBatchOutputs(const std::string& input, const std::vector<std::string>& parts,
                               const std::string& output) {
  if (parts.empty()) throw Error("no parts to merge (give the output of every shard)");
  const InputScan scan = ScanInput(input, Shard{});
  MergeSummary summary;
  summary.shards = CheckShards(parts, scan, input);
  std::map<std::string, Location> records = IndexRecords(parts);
  std::vector<Location> order;
  std::vector<std::string> missing;
  for (const std::string& key : Needed(input, scan)) {
    const auto it = records.find(key);
    if (it == records.end()) {
      missing.push_back(Describe(key));
      continue;
    }
    order.push_back(it->second);
    records.erase(it);
  }
  if (!missing.empty()) {
    throw Error(std::to_string(missing.size()) + " input lines have no answer: " + Listing(missing) +
                " (is a shard still running, or did it fail? run it again: it resumes)");
  }
  if (!records.empty()) {
    std::vector<std::string> extra;
    for (const auto& [key, location] : records) extra.push_back(Describe(key) + " in " + parts[location.part]);
    throw Error("records that answer no line of " + input + ": " + Listing(extra));
  }
  WriteMerged(parts, order, output);
  summary.lines = static_cast<int64_t>(order.size());
  return summary;
}

}  // namespace dsv4
