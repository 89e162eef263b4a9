#include "engine/batch/batch_input.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using testing::ErrorOf;
using testing::TempDir;
using testing::WriteFile;

// Every (line number, text) the shard yields.
std::vector<std::pair<int64_t, std::string>> ReadShard(const std::string& path, const Shard& shard) {
  InputLines lines(path, shard);
  std::vector<std::pair<int64_t, std::string>> read;
  int64_t line;
  std::string text;
  while (lines.Next(line, text)) read.emplace_back(line, text);
  return read;
}

TEST(Shard, ParsesIndexOverCount) {
  const Shard shard = ParseShard("2/5");
  EXPECT_EQ(shard.index, 2);
  EXPECT_EQ(shard.count, 5);
  EXPECT_EQ(shard.ToString(), "2/5");
  EXPECT_EQ(ParseShard("0/1").ToString(), "0/1");
}

TEST(Shard, RejectsMalformedOrOutOfRange) {
  for (const char* text : {"1/0", "2/2", "-1/3", "a/b", "1", "", "1/2x", " 1/2"}) {
    const std::string error = ErrorOf([&] { ParseShard(text); });
    EXPECT_EQ(error.rfind("--shard \"" + std::string(text) + "\": ", 0), 0u) << error;
  }
  EXPECT_NE(ErrorOf([] { ParseShard("1/0"); }).find("at least 1"), std::string::npos);
  EXPECT_NE(ErrorOf([] { ParseShard("2/2"); }).find("0..1"), std::string::npos);
}

TEST(Shard, OwnsEveryCountthLine) {
  const Shard shard{1, 3};
  EXPECT_FALSE(shard.Owns(0));
  EXPECT_TRUE(shard.Owns(1));
  EXPECT_FALSE(shard.Owns(2));
  EXPECT_TRUE(shard.Owns(4));
  EXPECT_TRUE(Shard{}.Owns(7));
}

TEST(ScanInput, FingerprintsTheWholeFile) {
  TempDir dir;
  WriteFile(dir.File("in.jsonl"), "abc\n");
  const InputScan scan = ScanInput(dir.File("in.jsonl"), Shard{});
  EXPECT_EQ(scan.size_bytes, 4);
  EXPECT_EQ(scan.sha256, "edeaaff3f1774ad2888673770c6d64097e391bc362d7d6fb34982ddf0efd18cb");  // sha256sum
  EXPECT_EQ(scan.lines, 1);
  EXPECT_TRUE(scan.first_line_of_id.empty());  // "abc" is not JSON
}

TEST(ScanInput, CountsPhysicalLines) {
  TempDir dir;
  const auto lines = [&](const std::string& contents) {
    WriteFile(dir.File("in.jsonl"), contents);
    return ScanInput(dir.File("in.jsonl"), Shard{}).lines;
  };
  EXPECT_EQ(lines(""), 0);
  EXPECT_EQ(lines("a\n"), 1);
  EXPECT_EQ(lines("a\nb"), 2);  // a final line without '\n'
  EXPECT_EQ(lines("\n\na\n\n"), 4);  // blank lines count
}

TEST(ScanInput, MapsEachIdToItsFirstLineAcrossShards) {
  TempDir dir;
  WriteFile(dir.File("in.jsonl"),
            "{\"custom_id\": \"a\"}\n"
            "not json\n"
            "\n"
            "{\"custom_id\": \"b\"}\r\n"
            "{\"custom_id\": \"a\"}\n"
            "{\"custom_id\": 7}\n"
            "[\"custom_id\"]\n"
            "{\"custom_id\": \"c\"}");
  const InputScan scan = ScanInput(dir.File("in.jsonl"), Shard{1, 2});
  EXPECT_EQ(scan.lines, 8);
  EXPECT_EQ(scan.shard_lines, 4);
  const std::unordered_map<std::string, int64_t> expected = {{"a", 0}, {"b", 3}, {"c", 7}};
  EXPECT_EQ(scan.first_line_of_id, expected);
}

TEST(ScanInput, ReadsLinesThatSpanReadChunks) {
  TempDir dir;
  const std::string long_line = "{\"pad\": \"" + std::string(3 << 20, 'x') + "\", \"custom_id\": \"long\"}";
  const std::string contents = long_line + "\n{\"custom_id\": \"next\"}\n";
  WriteFile(dir.File("in.jsonl"), contents);
  const InputScan scan = ScanInput(dir.File("in.jsonl"), Shard{});
  EXPECT_EQ(scan.lines, 2);
  EXPECT_EQ(scan.size_bytes, static_cast<int64_t>(contents.size()));
  const std::unordered_map<std::string, int64_t> expected = {{"long", 0}, {"next", 1}};
  EXPECT_EQ(scan.first_line_of_id, expected);
}

TEST(ScanInput, NamesAnUnreadablePath) {
  TempDir dir;
  const std::string missing = dir.File("missing.jsonl");
  EXPECT_NE(ErrorOf([&] { ScanInput(missing, Shard{}); }).find(missing), std::string::npos);
  EXPECT_NE(ErrorOf([&] { InputLines(missing, Shard{}); }).find(missing), std::string::npos);
}

TEST(InputLines, YieldsTheShardsLinesWithTheirNumbers) {
  TempDir dir;
  WriteFile(dir.File("in.jsonl"), "l0\nl1\r\n\nl3\nl4\nl5\r\nl6");
  using Lines = std::vector<std::pair<int64_t, std::string>>;
  EXPECT_EQ(ReadShard(dir.File("in.jsonl"), Shard{0, 3}), (Lines{{0, "l0"}, {3, "l3"}, {6, "l6"}}));
  EXPECT_EQ(ReadShard(dir.File("in.jsonl"), Shard{1, 3}), (Lines{{1, "l1"}, {4, "l4"}}));
  EXPECT_EQ(ReadShard(dir.File("in.jsonl"), Shard{2, 3}), (Lines{{2, ""}, {5, "l5"}}));
  EXPECT_EQ(ReadShard(dir.File("in.jsonl"), Shard{}).size(), 7u);
}

TEST(InputLines, AnEmptyFileHasNoLines) {
  TempDir dir;
  WriteFile(dir.File("in.jsonl"), "");
  EXPECT_TRUE(ReadShard(dir.File("in.jsonl"), Shard{}).empty());
}

}  // namespace
}  // namespace dsv4
