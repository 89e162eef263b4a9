// Opening damaged checkpoints: copies of the tiny fixture (and small synthetic
// ones) with one thing broken. Each must be a one-line dsv4::Error naming the
// file and the tensor or field, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "loader/checkpoint.h"
#include "loader/error.h"
#include "loader/synth.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::DataPath;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;
using Json = nlohmann::ordered_json;

constexpr char kShard1[] = "model-00001-of-00003.safetensors";
constexpr char kShard2[] = "model-00002-of-00003.safetensors";

// Rewrites the header of a safetensors file with `edit`; `extra_data` is
// appended to the data section.
void EditSafetensorsHeader(const std::string& path, const std::function<void(Json&)>& edit,
                           const std::string& extra_data = "") {
  const std::string bytes = ReadFile(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  Json header = Json::parse(bytes.substr(8, n));
  edit(header);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t length = text.size();
  std::memcpy(out.data(), &length, 8);
  WriteFile(path, out + text + bytes.substr(8 + n) + extra_data);
}

uint64_t DataBytes(const std::string& path) {
  const std::string bytes = ReadFile(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  return bytes.size() - 8 - n;
}

std::string OpenError(const std::string& dir) {
  try {
    Checkpoint ckpt(dir);
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  return "(no error)";
}

class CheckpointErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.File("ckpt");
    fs::copy(DataPath("tiny-dsv4/checkpoint"), dir_);
  }

  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  std::string OpenError() const { return dsv4::OpenError(dir_); }

  void EditHeader(const std::string& shard, const std::function<void(Json&)>& edit) {
    EditSafetensorsHeader(File(shard), edit);
  }

  void EditConfig(const std::function<void(Json&)>& edit) {
    Json config = Json::parse(ReadFile(File("config.json")));
    edit(config);
    WriteFile(File("config.json"), config.dump(2));
  }

  // The error after one config edit; it must name config.json and `field`.
  std::string ConfigError(const std::string& field, const std::function<void(Json&)>& edit) {
    EditConfig(edit);
    const std::string message = OpenError();
    EXPECT_THAT(message, HasSubstr(File("config.json")));
    EXPECT_THAT(message, HasSubstr("\"" + field + "\""));
    return message;
  }

  TempDir tmp_;
  std::string dir_;
};

TEST_F(CheckpointErrorsTest, TheIntactCopyOpens) {
  Checkpoint ckpt(dir_);
  EXPECT_EQ(ckpt.schema().size(), 1057u);
  EXPECT_TRUE(ckpt.unexpected().empty());
}

TEST_F(CheckpointErrorsTest, MissingDirectoryAndFiles) {
  const std::string missing = tmp_.File("nowhere");
  EXPECT_THAT(dsv4::OpenError(missing), AllOf(HasSubstr(missing), HasSubstr("not found")));
  WriteFile(tmp_.File("plain"), "x");
  EXPECT_THAT(dsv4::OpenError(tmp_.File("plain")), AllOf(HasSubstr(tmp_.File("plain")), HasSubstr("not found")));

  fs::remove(File(kShard2));
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard2)), HasSubstr("missing")));
  fs::remove(File("config.json"));
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File("config.json")), HasSubstr("not found")));
}

TEST_F(CheckpointErrorsTest, MissingOrBrokenIndex) {
  WriteFile(File("model.safetensors.index.json"), "{\"weight_map\": ");
  EXPECT_THAT(OpenError(), AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("not valid JSON")));
  WriteFile(File("model.safetensors.index.json"), "{\"metadata\": {}}");
  EXPECT_THAT(OpenError(), AllOf(HasSubstr("model.safetensors.index.json"), HasSubstr("weight_map")));
  WriteFile(File("model.safetensors.index.json"), R"({"weight_map": {"embed.weight": "../x.safetensors"}})");
  EXPECT_THAT(OpenError(), HasSubstr("../x.safetensors"));
  fs::remove(File("model.safetensors.index.json"));
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(dir_), HasSubstr("no model.safetensors.index.json")));
}

TEST_F(CheckpointErrorsTest, TruncatedShard) {
  const std::string bytes = ReadFile(File(kShard2));
  WriteFile(File(kShard2), bytes.substr(0, bytes.size() - 1000));
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard2)), HasSubstr("truncated")));
}

TEST_F(CheckpointErrorsTest, HeaderOffsetsThatLieOrOverlap) {
  EditHeader(kShard1, [](Json& h) { h["embed.weight"]["data_offsets"][1] = 1u << 30; });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard1)), HasSubstr("tensor embed.weight"), HasSubstr("run past")));

  fs::copy_file(DataPath("tiny-dsv4/checkpoint/") + kShard1, File(kShard1), fs::copy_options::overwrite_existing);
  EditHeader(kShard2, [](Json& h) {
    // Point one norm weight at the data of another of the same size.
    h["layers.3.ffn_norm.weight"]["data_offsets"] = h["layers.3.attn_norm.weight"]["data_offsets"];
  });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard2)), HasSubstr("overlap")));
}

TEST_F(CheckpointErrorsTest, UnknownDtype) {
  EditHeader(kShard2, [](Json& h) { h["layers.3.attn.wkv.weight"]["dtype"] = "F8_E5M2"; });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard2)), HasSubstr("tensor layers.3.attn.wkv.weight"),
                                 HasSubstr("unknown dtype \"F8_E5M2\"")));
}

TEST_F(CheckpointErrorsTest, MissingTensor) {
  EditHeader(kShard2, [](Json& h) { h.erase("layers.3.attn.wkv.scale"); });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(dir_), HasSubstr("tensor layers.3.attn.wkv.scale is missing")));
}

TEST_F(CheckpointErrorsTest, WrongDtype) {
  // BF16 -> F16 keeps the byte count, so only the schema check can catch it.
  EditHeader(kShard1, [](Json& h) { h["layers.0.attn_norm.weight"]["dtype"] = "F16"; });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard1)), HasSubstr("tensor layers.0.attn_norm.weight"),
                                 HasSubstr("dtype F16, expected BF16")));
}

TEST_F(CheckpointErrorsTest, WrongShape) {
  EditHeader(kShard1, [](Json& h) { h["layers.0.attn_norm.weight"]["shape"] = {128, 2}; });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File(kShard1)), HasSubstr("tensor layers.0.attn_norm.weight"),
                                 HasSubstr("shape [128, 2], expected [256]")));
}

TEST_F(CheckpointErrorsTest, TensorInTwoShards) {
  const uint64_t end = DataBytes(File(kShard2));
  EditSafetensorsHeader(
      File(kShard2),
      [&](Json& h) {
        h["layers.0.attn_norm.weight"] = {{"dtype", "BF16"}, {"shape", {256}}, {"data_offsets", {end, end + 512}}};
      },
      std::string(512, '\0'));
  EXPECT_THAT(OpenError(), AllOf(HasSubstr("tensor layers.0.attn_norm.weight"), HasSubstr("another shard")));
}

TEST_F(CheckpointErrorsTest, ExtraTensorIsReportedNotFatal) {
  const uint64_t end = DataBytes(File(kShard2));
  EditSafetensorsHeader(
      File(kShard2),
      [&](Json& h) { h["layers.3.extra"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {end, end + 4}}}; },
      std::string(4, '\0'));
  Checkpoint ckpt(dir_);
  EXPECT_EQ(ckpt.unexpected(), std::vector<std::string>{"layers.3.extra"});
}

TEST_F(CheckpointErrorsTest, ConfigMissingAField) {
  for (const char* field : {"hidden_size", "vocab_size", "compress_ratios", "scoring_func", "rope_theta", "hc_mult"}) {
    fs::copy_file(DataPath("tiny-dsv4/checkpoint/config.json"), File("config.json"),
                  fs::copy_options::overwrite_existing);
    EXPECT_THAT(ConfigError(field, [&](Json& c) { c.erase(field); }), HasSubstr("is missing"));
  }
}

TEST_F(CheckpointErrorsTest, ConfigWithImpossibleValues) {
  struct Case {
    const char* field;
    Json value;
    const char* why;
  };
  const Case cases[] = {
      {"vocab_size", -5, "must be >= 2"},
      {"hidden_size", "big", "must be an integer"},
      {"hidden_size", 250, "multiple of 32"},
      {"o_groups", 3, "must divide num_attention_heads"},
      {"num_experts_per_tok", 17, "must not exceed n_routed_experts"},
      {"num_hash_layers", 8, "must not exceed num_hidden_layers"},
      {"compress_ratios", Json::array({0, 0, 4}), "entries"},
      {"compress_ratios", Json::array({0, 0, 4, 128, 4, 128, 4, 4}), "MTP block"},
      {"compress_ratios", Json::array({0, 1, 4, 128, 4, 128, 4, 0}), "must be 0 or >= 2"},
      {"head_dim", 200, "multiple of 64"},
      {"index_head_dim", 96, "power of two"},
      {"rope_theta", 0, "positive"},
      {"rms_norm_eps", "1e-6", "must be a number"},
      {"scoring_func", "softmax", "not supported"},
      {"num_key_value_heads", 2, "must be 1"},
      {"tie_word_embeddings", true, "must be false"},
      {"eos_token_id", 1024, "must be < vocab_size"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.field) + " = " + c.value.dump());
    fs::copy_file(DataPath("tiny-dsv4/checkpoint/config.json"), File("config.json"),
                  fs::copy_options::overwrite_existing);
    EXPECT_THAT(ConfigError(c.field, [&](Json& j) { j[c.field] = c.value; }), HasSubstr(c.why));
  }
}

TEST_F(CheckpointErrorsTest, ConfigNotJson) {
  WriteFile(File("config.json"), "{\"vocab_size\": 1024,");
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File("config.json")), HasSubstr("not valid JSON")));
  WriteFile(File("config.json"), "[1, 2]");
  EXPECT_THAT(OpenError(), AllOf(HasSubstr(File("config.json")), HasSubstr("JSON object")));
}

TEST_F(CheckpointErrorsTest, ConfigThatDisagreesWithTheFiles) {
  EditConfig([](Json& c) { c["n_routed_experts"] = 32; });
  EXPECT_THAT(OpenError(), AllOf(HasSubstr("ffn.gate.weight"), HasSubstr("expected [32, 256]")));
  EditConfig([](Json& c) {
    c["n_routed_experts"] = 16;
    c["num_hash_layers"] = 4;  // layer 3 would need a tid2eid table
  });
  EXPECT_THAT(OpenError(), HasSubstr("layers.3.ffn.gate.tid2eid is missing"));
}

// A small synthetic checkpoint with an unusual config, damaged the same way.
TEST(SyntheticCheckpointErrors, WrongScaleGeometry) {
  TempDir tmp;
  SynthOverrides o;
  o.layers = 3;
  o.experts = 3;
  ModelConfig config = ApplyOverrides(TinyConfig(), o);
  const std::string dir = tmp.File("synth");
  SynthesizeCheckpoint(config, {}, dir);
  const std::string shard = dir + "/model-00004-of-00006.safetensors";  // layers.2
  // Same bytes, wrong geometry.
  EditSafetensorsHeader(shard, [](Json& h) { h["layers.2.ffn.experts.1.w2.scale"]["shape"] = {128, 8}; });
  EXPECT_THAT(OpenError(dir), AllOf(HasSubstr(shard), HasSubstr("layers.2.ffn.experts.1.w2.scale"),
                                    HasSubstr("shape [128, 8], expected [256, 4]")));
}

}  // namespace
}  // namespace dsv4
