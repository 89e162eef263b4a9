#include "engine/batch/batch_output.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using nlohmann::ordered_json;
using testing::ErrorOf;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

BatchFingerprint Fingerprint(const std::string& sha256 = "aaaa") {
  return {{{"input", {{"size", 4}, {"sha256", sha256}}}, {"model", "tiny"}, {"shard", "0/1"}}};
}

ordered_json Record(const std::string& custom_id, const std::string& content = "ok") {
  return {{"id", "batch_req_" + custom_id},
          {"custom_id", custom_id},
          {"response", {{"status_code", 200}, {"body", {{"content", content}}}}},
          {"error", nullptr}};
}

// A record for an input line that had no usable custom_id.
ordered_json IdlessRecord(int64_t line) {
  return {{"id", "batch_req_line" + std::to_string(line)},
          {"custom_id", nullptr},
          {"response", nullptr},
          {"error", {{"code", "invalid_request"}, {"message", "no custom_id"}, {"line", line}}}};
}

// Every line of the output, each of which must be a whole JSON record.
std::vector<ordered_json> Records(const std::string& path) {
  const std::string text = ReadFile(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << path << " ends in a torn line";
  std::vector<ordered_json> records;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    records.push_back(ordered_json::parse(line, nullptr, /*allow_exceptions=*/false));
    EXPECT_TRUE(records.back().is_object()) << "not a record: " << line;
  }
  return records;
}

class BatchOutputTest : public ::testing::Test {
 protected:
  BatchOutput Open(bool fresh = false, const BatchFingerprint& fingerprint = Fingerprint()) {
    return BatchOutput::Open(out_, fingerprint, fresh);
  }
  // An output holding records "a" and "b".
  void WriteTwoRecords() {
    BatchOutput output = Open();
    output.Append(Record("a"));
    output.Append(Record("b"));
  }

  TempDir dir_;
  const std::string out_ = dir_.File("out.jsonl");
  const std::string sidecar_ = out_ + ".dsv4";
};

TEST_F(BatchOutputTest, AFreshOutputIsEmptyWithASidecar) {
  const BatchOutput output = Open();
  EXPECT_EQ(output.records(), 0);
  EXPECT_EQ(output.resumed(), 0);
  EXPECT_EQ(ReadFile(out_), "");
  const ordered_json sidecar = ordered_json::parse(ReadFile(sidecar_));
  EXPECT_EQ(sidecar["dsv4_batch"], 1);
  EXPECT_EQ(sidecar["fingerprint"], Fingerprint().fields);
  EXPECT_EQ(sidecar["idless_lines"], ordered_json::array());
}

TEST_F(BatchOutputTest, ResumesWhatWasAppended) {
  {
    BatchOutput output = Open();
    output.Append(Record("a", "caf\xc3\xa9"));
    output.Append(IdlessRecord(5));
    output.Append(Record("b", "bad \xff byte"));
    output.Sync();
    EXPECT_EQ(output.records(), 3);
  }
  const std::string text = ReadFile(out_);
  EXPECT_NE(text.find("caf\xc3\xa9"), std::string::npos);          // UTF-8 as is
  EXPECT_NE(text.find("bad \xef\xbf\xbd byte"), std::string::npos);  // invalid UTF-8 replaced by U+FFFD
  EXPECT_EQ(Records(out_).size(), 3u);

  BatchOutput output = Open();
  EXPECT_EQ(output.resumed(), 3);
  EXPECT_TRUE(output.DoneId("a"));
  EXPECT_TRUE(output.DoneId("b"));
  EXPECT_FALSE(output.DoneId("c"));
  EXPECT_TRUE(output.DoneLine(5));
  EXPECT_FALSE(output.DoneLine(4));
  output.Append(Record("c"));
  EXPECT_EQ(output.records(), 4);
  EXPECT_TRUE(output.DoneId("c"));
  EXPECT_EQ(Records(out_).size(), 4u);
}

TEST_F(BatchOutputTest, CutsOffATornLastLine) {
  for (const std::string torn : {"{\"custom_id\": \"c\", \"resp",  // killed mid-write
                                 "{\"custom_id\": \"c\"}",          // all but the '\n'
                                 "{\"custom_id\": \"c\", \"resp\n",  // ends in '\n' but is no JSON
                                 "\n"}) {
    SCOPED_TRACE(torn);
    WriteTwoRecords();
    const std::string whole = ReadFile(out_);
    WriteFile(out_, whole + torn);
    BatchOutput output = Open();
    EXPECT_EQ(output.resumed(), 2);
    EXPECT_FALSE(output.DoneId("c"));
    EXPECT_EQ(ReadFile(out_), whole);
    output.Append(Record("c"));
    const std::vector<ordered_json> records = Records(out_);
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[2]["custom_id"], "c");
    std::remove(out_.c_str());
  }
}

TEST_F(BatchOutputTest, ADamagedLineBeforeTheLastIsAnError) {
  WriteTwoRecords();
  const std::string text = ReadFile(out_);
  const size_t second = text.find('\n') + 1;
  WriteFile(out_, text.substr(0, second) + "garbage\n" + text.substr(second));
  const std::string error = ErrorOf([&] { Open(); });
  EXPECT_NE(error.find(out_ + ":2: not a JSON record"), std::string::npos) << error;
  EXPECT_NE(error.find("--fresh"), std::string::npos) << error;
}

TEST_F(BatchOutputTest, ARecordWithoutAKeyIsAnError) {
  WriteTwoRecords();
  WriteFile(out_, ReadFile(out_) + "{\"id\": \"x\"}\n");
  EXPECT_NE(ErrorOf([&] { Open(); }).find(out_ + ":3: a record with neither"), std::string::npos);

  BatchOutput output = Open(/*fresh=*/true);
  ordered_json record = IdlessRecord(1);
  record["error"].erase("line");
  EXPECT_NE(ErrorOf([&] { output.Append(record); }).find("error.line"), std::string::npos);
  EXPECT_EQ(ReadFile(out_), "");
}

TEST_F(BatchOutputTest, AnotherFingerprintIsAnError) {
  WriteTwoRecords();
  const std::string error = ErrorOf([&] { Open(false, Fingerprint("bbbb")); });
  EXPECT_NE(error.find(sidecar_), std::string::npos) << error;
  EXPECT_NE(error.find("input.sha256 = \"aaaa\", but this run has \"bbbb\""), std::string::npos) << error;
  EXPECT_NE(error.find("pass --fresh to start over"), std::string::npos) << error;

  BatchFingerprint more = Fingerprint();
  more.fields["defaults"] = {{"max_tokens", 16}};
  EXPECT_NE(ErrorOf([&] { Open(false, more); }).find("defaults = (absent)"), std::string::npos);

  // Key order is no difference.
  const BatchFingerprint reordered = {{{"shard", "0/1"}, {"model", "tiny"}, {"input", {{"sha256", "aaaa"}, {"size", 4}}}}};
  EXPECT_EQ(Open(false, reordered).resumed(), 2);
}

TEST_F(BatchOutputTest, AnOutputWithoutSidecarIsAnError) {
  WriteFile(out_, Record("a").dump() + "\n");
  EXPECT_EQ(ErrorOf([&] { Open(); }), out_ + " exists but " + sidecar_ +
                                          " does not: it was not written by dsv4 batch; move it away or pass --fresh");
  WriteFile(sidecar_, "{\"dsv4_batch\": 1, \"fingerp");
  EXPECT_NE(ErrorOf([&] { Open(); }).find(sidecar_ + ": not a dsv4 batch sidecar"), std::string::npos);
}

TEST_F(BatchOutputTest, FreshStartsOver) {
  WriteTwoRecords();
  BatchOutput output = Open(/*fresh=*/true, Fingerprint("bbbb"));
  EXPECT_EQ(output.resumed(), 0);
  EXPECT_FALSE(output.DoneId("a"));
  EXPECT_EQ(ReadFile(out_), "");
  EXPECT_EQ(ordered_json::parse(ReadFile(sidecar_))["fingerprint"], Fingerprint("bbbb").fields);
}

TEST_F(BatchOutputTest, IdlessLinesComeFromTheRecordsAndTheSidecar) {
  {
    BatchOutput output = Open();
    output.Append(IdlessRecord(3));
    EXPECT_TRUE(output.DoneLine(3));
    EXPECT_EQ(ordered_json::parse(ReadFile(sidecar_))["idless_lines"], ordered_json::array());
    output.Sync();  // the sidecar catches up at each Sync
  }
  EXPECT_EQ(ordered_json::parse(ReadFile(sidecar_))["idless_lines"], ordered_json::array({3}));
  // A kill before the next Sync leaves the line out of the sidecar; the
  // sidecar may also list a line (9) whose record it alone knows.
  ordered_json sidecar = ordered_json::parse(ReadFile(sidecar_));
  sidecar["idless_lines"] = {9};
  WriteFile(sidecar_, sidecar.dump());
  const BatchOutput output = Open();
  EXPECT_TRUE(output.DoneLine(3));
  EXPECT_TRUE(output.DoneLine(9));
  EXPECT_FALSE(output.DoneLine(4));
}

TEST_F(BatchOutputTest, OneWriterAtATimeAndNoStaleTempFiles) {
  WriteFile(sidecar_ + ".123.4.tmp", "left by a killed run");
  {
    const BatchOutput first = Open();
    EXPECT_FALSE(std::filesystem::exists(sidecar_ + ".123.4.tmp"));
    EXPECT_NE(ErrorOf([&] { Open(); }).find("another dsv4 batch is writing this output"), std::string::npos);
  }
  const BatchOutput again = Open();  // the lock went with the first
  EXPECT_EQ(again.records(), 0);
}

// The kill test: a child appends kRecords records in order, skipping those a
// resumed output holds already, and is killed at a random moment; each time,
// the output must resume to exactly the first k records, each once. Half the
// kills are timed from the fork, to strike while the output is opened; half
// from the moment it is open, to strike among the appends (resuming a few MB
// takes longer than the delays).
constexpr int kRecords = 2000;

bool IsIdless(int i) { return i % 50 == 25; }

// Writes a byte to `opened_fd`, if given, once the output is open.
void AppendAllRecords(const std::string& path, int opened_fd = -1) {
  BatchOutput output = BatchOutput::Open(path, Fingerprint(), /*fresh=*/false);
  if (opened_fd >= 0 && write(opened_fd, "o", 1) != 1) _exit(1);
  const std::string payload(8192, 'x');  // several pages, so that a kill can tear a write
  for (int i = 0; i < kRecords; ++i) {
    const std::string id = std::to_string(i);
    if (IsIdless(i) ? output.DoneLine(i) : output.DoneId(id)) continue;
    output.Append(IsIdless(i) ? IdlessRecord(i) : Record(id, payload));
  }
}

// The index i of every record in the output, in file order.
std::vector<int> RecordIndices(const std::string& path) {
  std::vector<int> indices;
  for (const ordered_json& record : Records(path)) {
    indices.push_back(record["custom_id"].is_string() ? std::stoi(record["custom_id"].get<std::string>())
                                                      : record["error"]["line"].get<int>());
  }
  return indices;
}

void ExpectFirstRecordsInOrder(const std::vector<int>& indices) {
  for (size_t k = 0; k < indices.size(); ++k) ASSERT_EQ(indices[k], static_cast<int>(k)) << "record " << k;
}

TEST_F(BatchOutputTest, SurvivesSigkillAtAnyMoment) {
  std::mt19937 random(std::random_device{}());
  for (int attempt = 0; attempt < 8; ++attempt) {
    const bool from_open = attempt % 2 == 1;
    const int delay_us = std::uniform_int_distribution<int>(50, from_open ? 5000 : 15000)(random);
    SCOPED_TRACE("killed " + std::to_string(delay_us) + " us after the " + (from_open ? "open" : "fork"));
    int opened[2];
    ASSERT_EQ(pipe(opened), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      try {
        AppendAllRecords(out_, opened[1]);
      } catch (...) {
        _exit(1);
      }
      _exit(0);
    }
    close(opened[1]);
    if (from_open) {
      char byte;
      ASSERT_EQ(read(opened[0], &byte, 1), 1) << "the child failed to open the output";
    }
    usleep(delay_us);
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    close(opened[0]);  // only now: the child's byte must not meet a closed pipe (SIGPIPE)
    ASSERT_TRUE(WIFSIGNALED(status) || WEXITSTATUS(status) == 0) << "the child failed";

    const BatchOutput output = Open();  // cuts off a torn last line
    const std::vector<int> indices = RecordIndices(out_);
    EXPECT_EQ(output.resumed(), static_cast<int64_t>(indices.size()));
    ExpectFirstRecordsInOrder(indices);
  }
  AppendAllRecords(out_);
  const std::vector<int> indices = RecordIndices(out_);
  EXPECT_EQ(indices.size(), static_cast<size_t>(kRecords));
  ExpectFirstRecordsInOrder(indices);
}

}  // namespace
}  // namespace dsv4
