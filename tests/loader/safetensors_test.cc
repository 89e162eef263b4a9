// The safetensors reader on hand-made and damaged files, and the streaming
// writer: every bad input is a dsv4::Error naming the file (and the tensor),
// never a crash or a read outside the mapping.
#include "loader/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "loader/error.h"
#include "loader/safetensors_writer.h"
#include "loader/synth.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::DataPath;
using testing::ReadFile;
using testing::ErrorOf;
using testing::TempDir;
using testing::WriteFile;

std::string OpenError(const std::string& path) {
  return ErrorOf([&] { SafetensorsFile file(path); });
}

// 8-byte little-endian header length, the header text, the data.
std::string Raw(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + data;
}

class SafetensorsReaderTest : public ::testing::Test {
 protected:
  // Writes a file with this header and `data_bytes` zero bytes of data; returns its path.
  std::string Make(const std::string& header, size_t data_bytes = 16) {
    const std::string path = tmp_.File(std::to_string(count_++) + ".safetensors");
    WriteFile(path, Raw(header, std::string(data_bytes, '\0')));
    return path;
  }
  // The error for a one-tensor file whose entry is `entry`.
  std::string EntryError(const std::string& entry, size_t data_bytes = 16) {
    const std::string path = Make("{\"w\": " + entry + "}", data_bytes);
    const std::string message = OpenError(path);
    EXPECT_THAT(message, HasSubstr(path));
    EXPECT_THAT(message, HasSubstr("tensor w"));
    return message;
  }

  TempDir tmp_;
  int count_ = 0;
};

TEST_F(SafetensorsReaderTest, ReadsAWellFormedFile) {
  const float values[3] = {1.5f, -2.0f, 3.25f};
  const std::string data(reinterpret_cast<const char*>(values), 12);
  const std::string path = tmp_.File("ok.safetensors");
  WriteFile(path, Raw(R"({"__metadata__": {"format": "pt"}, "x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]},)"
                      R"( "e": {"dtype": "F8_E8M0", "shape": [0], "data_offsets": [12, 12]}})",
                      data));
  SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), 2u);
  const TensorView* x = file.Find("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->dtype, DType::kF32);
  EXPECT_EQ(x->NumElements(), 3);
  EXPECT_EQ(std::memcmp(x->data, values, 12), 0);
  EXPECT_EQ(file.Find("e")->bytes, 0u);
  EXPECT_EQ(file.Find("missing"), nullptr);
}

TEST_F(SafetensorsReaderTest, MissingOrNotAFile) {
  EXPECT_THAT(OpenError(tmp_.File("absent.safetensors")), AllOf(HasSubstr("absent.safetensors"), HasSubstr("cannot open")));
  EXPECT_THAT(OpenError(tmp_.path()), AllOf(HasSubstr(tmp_.path()), HasSubstr("not a regular file")));
}

TEST_F(SafetensorsReaderTest, TruncatedBeforeTheHeader) {
  const std::string empty = tmp_.File("empty.safetensors"), five = tmp_.File("five.safetensors");
  WriteFile(empty, "");
  WriteFile(five, "abcde");
  EXPECT_THAT(OpenError(empty), AllOf(HasSubstr(empty), HasSubstr("truncated")));
  EXPECT_THAT(OpenError(five), AllOf(HasSubstr(five), HasSubstr("(5 bytes)")));
  // A header length that runs past the end of the file.
  const std::string path = tmp_.File("long.safetensors");
  WriteFile(path, Raw("{}", "").substr(0, 8) + "{}");
  std::string bytes = ReadFile(path);
  bytes[0] = 100;
  WriteFile(path, bytes);
  EXPECT_THAT(OpenError(path), AllOf(HasSubstr(path), HasSubstr("header length 100 runs past the end")));
}

TEST_F(SafetensorsReaderTest, TruncatedFixtureShard) {
  const std::string shard = DataPath("tiny-dsv4/checkpoint/model-00002-of-00003.safetensors");
  const std::string data = ReadFile(shard);
  for (size_t keep : {data.size() - 1, data.size() / 2, size_t{8} + 10}) {
    const std::string path = tmp_.File("cut.safetensors");
    WriteFile(path, data.substr(0, keep));
    const std::string message = OpenError(path);
    EXPECT_THAT(message, HasSubstr(path));
    EXPECT_THAT(message, HasSubstr("truncated")) << message;
  }
}

TEST_F(SafetensorsReaderTest, HeaderNotAJsonObject) {
  for (const char* header : {"", "not json", "[1, 2]", "{\"a\": 1", "\"text\""}) {
    const std::string path = Make(header);
    EXPECT_THAT(OpenError(path), AllOf(HasSubstr(path), HasSubstr("header is not a JSON object"))) << header;
  }
}

TEST_F(SafetensorsReaderTest, BadEntries) {
  EXPECT_THAT(EntryError("5"), HasSubstr("not an object"));
  EXPECT_THAT(EntryError(R"({"shape": [2], "data_offsets": [0, 8]})"), HasSubstr("missing dtype"));
  EXPECT_THAT(EntryError(R"({"dtype": 4, "shape": [2], "data_offsets": [0, 8]})"), HasSubstr("missing dtype"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "data_offsets": [0, 8]})"), HasSubstr("missing shape"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [2]})"), HasSubstr("missing data_offsets"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]})"),
              HasSubstr("missing data_offsets"));
}

TEST_F(SafetensorsReaderTest, UnknownDtype) {
  EXPECT_THAT(EntryError(R"({"dtype": "F4", "shape": [2], "data_offsets": [0, 1]})"), HasSubstr("unknown dtype \"F4\""));
  EXPECT_THAT(EntryError(R"({"dtype": "bf16", "shape": [2], "data_offsets": [0, 4]})"),
              HasSubstr("unknown dtype \"bf16\""));
}

TEST_F(SafetensorsReaderTest, BadShapes) {
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]})"),
              HasSubstr("negative dimension"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]})"),
              HasSubstr("non-integer"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]})"),
              HasSubstr("non-integer"));
  EXPECT_THAT(EntryError(R"({"dtype": "BF16", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 8]})"),
              HasSubstr("absurdly large"));
}

TEST_F(SafetensorsReaderTest, OffsetsThatLie) {
  // Past the end of the data, reversed, negative, and not matching dtype x shape.
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [8], "data_offsets": [0, 32]})"),
              HasSubstr("run past the end of the data (16 bytes)"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]})"), HasSubstr("[8, 4)"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]})"),
              HasSubstr("not non-negative integers"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [2], "data_offsets": [0, 6]})"),
              HasSubstr("cover 6 bytes but F32 x [2] needs 8"));
  EXPECT_THAT(EntryError(R"({"dtype": "F32", "shape": [2], "data_offsets": [18446744073709551615, 7]})"),
              HasSubstr("run past the end"));
}

TEST_F(SafetensorsReaderTest, OverlappingTensors) {
  const std::string path =
      Make(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
           R"( "b": {"dtype": "I32", "shape": [2], "data_offsets": [4, 12]}})");
  EXPECT_THAT(OpenError(path), AllOf(HasSubstr(path), HasSubstr("overlap at byte 4")));
  const std::string same =
      Make(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},)"
           R"( "b": {"dtype": "I8", "shape": [4], "data_offsets": [0, 4]}})");
  EXPECT_THAT(OpenError(same), HasSubstr("overlap"));
}

// ---- Writer ------------------------------------------------------------------

TEST(SafetensorsWriter, RoundTripsAlignedWithoutHoles) {
  TempDir tmp;
  const std::vector<TensorEntry> tensors = {{"u8", DType::kU8, {3}},
                                            {"f32", DType::kF32, {5}},
                                            {"bf16", DType::kBF16, {3}},
                                            {"i64", DType::kI64, {2, 1}},
                                            {"e8m0", DType::kF8E8M0, {1}},
                                            {"empty", DType::kF32, {0, 4}}};
  const std::string path = tmp.File("w.safetensors");
  std::string data;
  {
    SafetensorsWriter writer(path, tensors);
    EXPECT_EQ(writer.layout().header.size() % 8, 0u);
    // Largest elements first, stable otherwise.
    std::vector<std::string> order;
    for (const TensorEntry& t : writer.layout().tensors) order.push_back(t.name);
    EXPECT_EQ(order, (std::vector<std::string>{"i64", "f32", "empty", "bf16", "u8", "e8m0"}));
    for (uint64_t i = 0; i < writer.layout().data_bytes; ++i) data += static_cast<char>(i * 7 + 1);
    // Pieces of odd sizes that straddle tensor boundaries.
    for (size_t at = 0; at < data.size(); at += 5) writer.Append(data.data() + at, std::min<size_t>(5, data.size() - at));
    writer.Finish();
    EXPECT_EQ(fs::file_size(path), writer.layout().FileBytes());
  }
  SafetensorsFile file(path);
  ASSERT_EQ(file.tensors().size(), tensors.size());
  size_t expected_offset = 0;
  for (const char* name : {"i64", "f32", "empty", "bf16", "u8", "e8m0"}) {
    const TensorView* v = file.Find(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ(v->file_offset % DTypeSize(v->dtype), 0u) << name;
    EXPECT_EQ(v->file_offset - file.Find("i64")->file_offset, expected_offset) << name;  // no holes
    EXPECT_EQ(std::memcmp(v->data, data.data() + expected_offset, v->bytes), 0) << name;
    expected_offset += v->bytes;
  }
  EXPECT_EQ(file.Find("i64")->shape, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(expected_offset, data.size());
}

TEST(SafetensorsWriter, ZerosAreHolesThatReadBackAsZeros) {
  TempDir tmp;
  const std::string path = tmp.File("z.safetensors");
  const std::vector<uint8_t> ones(4096, 1);
  {
    SafetensorsWriter writer(path, {{"a", DType::kU8, {4096}}, {"b", DType::kU8, {1 << 22}}, {"c", DType::kU8, {1 << 21}}});
    writer.Append(ones.data(), ones.size());
    writer.AppendZeros(1 << 22);
    EXPECT_THAT(ErrorOf([&] { writer.AppendZeros((1 << 21) + 1); }), AllOf(HasSubstr(path), HasSubstr("declares")));
    writer.AppendZeros(1 << 21);  // the file ends in a hole
    writer.Finish();
    EXPECT_EQ(fs::file_size(path), writer.layout().FileBytes());
  }
  SafetensorsFile file(path);
  EXPECT_TRUE(std::all_of(file.Find("a")->data, file.Find("a")->data + 4096, [](uint8_t v) { return v == 1; }));
  for (const char* name : {"b", "c"}) {
    const TensorView* v = file.Find(name);
    EXPECT_TRUE(std::all_of(v->data, v->data + v->bytes, [](uint8_t b) { return b == 0; })) << name;
  }
}

TEST(SafetensorsWriter, RejectsWrongByteCountsNamingTheFile) {
  TempDir tmp;
  const std::string path = tmp.File("w.safetensors");
  SafetensorsWriter writer(path, {{"a", DType::kF32, {2}}});
  const char bytes[12] = {};
  EXPECT_THAT(ErrorOf([&] { writer.Append(bytes, 12); }), AllOf(HasSubstr(path), HasSubstr("declares 8")));
  writer.Append(bytes, 4);
  EXPECT_THAT(ErrorOf([&] { writer.Finish(); }), AllOf(HasSubstr(path), HasSubstr("only 4 of 8")));
}

TEST(SafetensorsWriter, RejectsDuplicateAndReservedNames) {
  EXPECT_THAT(ErrorOf([] { LayOutSafetensors({{"a", DType::kU8, {1}}, {"a", DType::kF32, {1}}}); }),
              HasSubstr("tensor a is listed twice"));
  EXPECT_THAT(ErrorOf([] { LayOutSafetensors({{"__metadata__", DType::kU8, {1}}}); }), HasSubstr("invalid tensor name"));
  EXPECT_THAT(ErrorOf([] { LayOutSafetensors({{"huge", DType::kI64, {int64_t{1} << 40, int64_t{1} << 40}}}); }),
              HasSubstr("tensor huge is too large"));
}

TEST(SafetensorsWriter, IoErrorsNameTheFile) {
  TempDir tmp;
  const std::string missing = tmp.File("no/such/dir/w.safetensors");
  EXPECT_THAT(ErrorOf([&] { SafetensorsWriter w(missing, {{"a", DType::kU8, {1}}}); }),
              AllOf(HasSubstr(missing), HasSubstr("cannot create")));
  EXPECT_THAT(ErrorOf([&] { WriteWholeFile(missing, "x"); }), AllOf(HasSubstr(missing), HasSubstr("cannot create")));
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full to simulate a full disk";
  EXPECT_THAT(ErrorOf([] {
                SafetensorsWriter w("/dev/full", {{"a", DType::kU8, {1 << 20}}});
                std::string data(1 << 20, 'x');
                w.Append(data.data(), data.size());
                w.Finish();
              }),
              AllOf(HasSubstr("/dev/full"), HasSubstr("No space left on device")));
  EXPECT_THAT(ErrorOf([] { WriteWholeFile("/dev/full", "{}"); }),
              AllOf(HasSubstr("/dev/full"), HasSubstr("No space left on device")));
}

TEST(SafetensorsWriter, IndexAndConfigFiles) {
  TempDir tmp;
  WriteShardIndex(tmp.File("index.json"), 1234, {{"b", "model-00002-of-00002.safetensors"},
                                                 {"a", "model-00001-of-00002.safetensors"}});
  const auto index = nlohmann::ordered_json::parse(ReadFile(tmp.File("index.json")));
  EXPECT_EQ(index["metadata"]["total_size"], 1234);
  EXPECT_EQ(index["weight_map"].begin().key(), "a");
  EXPECT_EQ(index["weight_map"]["b"], "model-00002-of-00002.safetensors");

  WriteConfigJson(tmp.File("config.json"), TinyConfig());
  EXPECT_EQ(ModelConfig::FromFile(tmp.File("config.json")).ToJson(), TinyConfig().ToJson());
  EXPECT_THAT(ReadFile(tmp.File("config.json")), HasSubstr("\n  \"vocab_size\": 1024,\n"));  // indent 2
}

}  // namespace
}  // namespace dsv4
