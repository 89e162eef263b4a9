#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "loader/safetensors.h"
#include "loader/safetensors_writer.h"
#include "loader/synth.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::DataPath;
using testing::ReadFile;
using testing::RunCli;
using testing::TempDir;
using testing::WriteFile;
using Json = nlohmann::json;

Json InspectJson(const std::string& args) {
  const auto r = RunCli("inspect " + args + " --json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const Json j = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

std::vector<std::string> Problems(const Json& j) { return j["problems"].get<std::vector<std::string>>(); }

// Overwrites `bytes` at element `index` of a tensor in its shard file.
void Patch(const std::string& shard, const std::string& tensor, size_t offset_in_tensor, const void* bytes,
           size_t n) {
  size_t at;
  {
    SafetensorsFile file(shard);
    at = file.Find(tensor)->file_offset + offset_in_tensor;
  }
  std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

TEST(InspectCli, TinyFixtureText) {
  const auto r = RunCli("inspect -m '" + DataPath("tiny-dsv4/checkpoint") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("7 layers + 1 MTP"));
  EXPECT_THAT(r.out, HasSubstr("layers.2   CSA (ratio 4)     hash"));
  EXPECT_THAT(r.out, HasSubstr("layers.3   HCA (ratio 128)   score"));
  EXPECT_THAT(r.out, HasSubstr("mtp.0      window            score"));
  EXPECT_THAT(r.out, HasSubstr("tensors: 1,057, 19,941,344 bytes"));
  EXPECT_THAT(r.out, HasSubstr("584.00 B/token"));
  EXPECT_THAT(r.out, HasSubstr("problems: none found"));
}

TEST(InspectCli, TinyFixtureJson) {
  const Json j = InspectJson("-m '" + DataPath("tiny-dsv4/checkpoint") + "'");
  EXPECT_EQ(j["kind"], "checkpoint");
  EXPECT_EQ(j["config"]["hidden_size"], 256);
  ASSERT_EQ(j["layers"].size(), 8u);
  const std::vector<std::string> attention = {"window", "window", "CSA", "HCA", "CSA", "HCA", "CSA", "window"};
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(j["layers"][i]["attention"], attention[i]) << i;
    EXPECT_EQ(j["layers"][i]["routing"], i < 3 ? "hash" : "score") << i;
    EXPECT_EQ(j["layers"][i]["yarn"], attention[i] != "window") << i;
  }
  EXPECT_EQ(j["layers"][7]["name"], "mtp.0");
  EXPECT_EQ(j["tensors"]["count"], 1057);
  EXPECT_EQ(j["tensors"]["bytes"], 19941344);
  EXPECT_EQ(j["tensors"]["by_dtype"]["I8"]["tensors"], 384);
  EXPECT_EQ(j["tensors"]["by_dtype"]["I64"]["bytes"], 3 * 1024 * 4 * 8);
  const Json& d = j["decode_bytes_per_token"];
  EXPECT_EQ(d["total"].get<uint64_t>(), d["dense"].get<uint64_t>() + d["routed_experts"].get<uint64_t>() +
                                            d["embedding_row"].get<uint64_t>() + d["head"].get<uint64_t>());
  EXPECT_EQ(d["embedding_row"], 512);
  EXPECT_EQ(d["head"], 1024 * 256 * 2);
  // 7 main layers, top-4 of 16 experts; each expert is 3 x (128 x 128 bytes + 128 x 8 scales) roughly.
  EXPECT_EQ(d["routed_experts"], 7 * 4 * (2 * (128 * 128 + 128 * 8) + 256 * 64 + 256 * 4));
  // CSA rows: 256 x 2 B / 4 + indexer 128 x 2 B / 4, three layers; HCA 512 B / 128, two layers.
  EXPECT_EQ(j["kv_cache"]["reference_bf16"]["bytes_per_token"], 3 * (128 + 64) + 2 * 4);
  EXPECT_EQ(j["kv_cache"]["max_context"], 8192);
  EXPECT_TRUE(Problems(j).empty());
}

TEST(InspectCli, FlashConfig) {
  TempDir tmp;
  WriteConfigJson(tmp.File("config.json"), FlashConfig());
  const Json j = InspectJson("--config '" + tmp.File("config.json") + "'");
  EXPECT_EQ(j["kind"], "config");
  EXPECT_EQ(j["layers"].size(), 44u);
  EXPECT_EQ(j["tensors"]["count"], 69187);  // the official census (spec §2.1)
  EXPECT_EQ(j["tensors"]["bytes"], 159609485896u);
  EXPECT_EQ(j["tensors"]["by_dtype"]["F8_E8M0"]["tensors"], 34167);
  const Json& ref = j["kv_cache"]["reference_bf16"];
  EXPECT_EQ(ref["bytes_per_token"], 6880);  // spec §5.2
  EXPECT_EQ(ref["bytes_at_max_context"].get<uint64_t>() - ref["fixed_bytes"].get<uint64_t>(), 7214202880u);
  const Json& compact = j["kv_cache"]["exact_compact"];
  EXPECT_EQ(compact["row_bytes"], 448 + 7 + 64 * 4);
  EXPECT_EQ(compact["indexer_row_bytes"], 64 + 4);
  EXPECT_LE(compact["bytes_per_token"].get<double>(), 4300.0);
  EXPECT_DOUBLE_EQ(compact["bytes_per_token"].get<double>(), 21 * (711 + 68) / 4.0 + 20 * 711 / 128.0);
  // Decode reads ~11 GB per token (design.md); 13B active parameters (model card).
  const double decode = j["decode_bytes_per_token"]["total"].get<double>();
  EXPECT_GT(decode, 10e9);
  EXPECT_LT(decode, 12e9);
  EXPECT_NEAR(j["parameters"]["active_per_token"].get<double>(), 13e9, 0.5e9);
  EXPECT_NEAR(j["parameters"]["total"].get<double>() - j["parameters"]["mtp"].get<double>(), 284e9, 1e9);
  EXPECT_THAT(Problems(j), ::testing::IsEmpty());

  const auto text = RunCli("inspect --config '" + tmp.File("config.json") + "'");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, AllOf(HasSubstr("6880.00 B/token"), HasSubstr("problems: not checked")));
}

TEST(InspectCli, ReportsProblemsInTheFiles) {
  TempDir tmp;
  const std::string dir = tmp.File("ckpt");
  fs::copy(DataPath("tiny-dsv4/checkpoint"), dir);
  const std::string shard1 = dir + "/model-00001-of-00003.safetensors";
  const int64_t bad_expert = 99;
  Patch(shard1, "layers.0.ffn.gate.tid2eid", 8 * 5, &bad_expert, 8);  // row 1, second entry
  const float nan = std::nanf("");
  Patch(shard1, "layers.0.attn.attn_sink", 4 * 2, &nan, 4);
  Json index = Json::parse(ReadFile(dir + "/model.safetensors.index.json"));
  index["metadata"]["total_size"] = 5;
  index["weight_map"]["layers.0.attn.attn_sink"] = "model-00003-of-00003.safetensors";
  WriteFile(dir + "/model.safetensors.index.json", index.dump());

  const Json j = InspectJson("-m '" + dir + "'");
  const std::vector<std::string> problems = Problems(j);
  EXPECT_THAT(problems, Contains(AllOf(HasSubstr("layers.0.ffn.gate.tid2eid row 1"), HasSubstr("outside [0, 16)"))));
  EXPECT_THAT(problems, Contains(AllOf(HasSubstr(shard1), HasSubstr("layers.0.attn.attn_sink"),
                                       HasSubstr("non-finite value at element 2"))));
  EXPECT_THAT(problems, Contains(HasSubstr("total_size is 5")));
  EXPECT_THAT(problems, Contains(HasSubstr("puts layers.0.attn.attn_sink in \"model-00003-of-00003.safetensors\"")));

  const auto text = RunCli("inspect -m '" + dir + "'");
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_THAT(text.out, HasSubstr("problems (4):"));
}

TEST(InspectCli, ReportsUnexpectedTensors) {
  TempDir tmp;
  // A checkpoint of a 3-layer config whose config.json is then cut to 2 layers:
  // layer 2's tensors are unexpected, not fatal.
  SynthOverrides o;
  o.layers = 3;
  SynthesizeCheckpoint(ApplyOverrides(TinyConfig(), o), {}, tmp.File("ckpt"));
  o.layers = 2;
  ModelConfig two = ApplyOverrides(TinyConfig(), o);
  two.compress_ratios = {0, 0, 0};
  WriteConfigJson(tmp.File("ckpt/config.json"), two);
  const Json j = InspectJson("-m '" + tmp.File("ckpt") + "'");
  const std::vector<std::string> problems = Problems(j);
  EXPECT_THAT(problems, Contains(HasSubstr("unexpected tensor layers.2.attn.attn_sink")));
  EXPECT_THAT(problems.back(), HasSubstr("more unexpected tensors"));
}

TEST(InspectCli, BadInput) {
  TempDir tmp;
  auto expect_error = [](const testing::CommandResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, StartsWith("dsv4 inspect: error: "));
    EXPECT_THAT(r.err, HasSubstr(needle));
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  };
  expect_error(RunCli("inspect -m '" + tmp.File("none") + "'"), tmp.File("none"));
  expect_error(RunCli("inspect --json -m '" + tmp.File("none") + "'"), "model directory not found");
  expect_error(RunCli("inspect"), "exactly one of -m");
  expect_error(RunCli("inspect -m a --config b"), "exactly one of -m");
  expect_error(RunCli("inspect --config '" + tmp.File("c.json") + "'"), tmp.File("c.json"));
  WriteFile(tmp.File("bad.json"), R"({"vocab_size": 10})");
  expect_error(RunCli("inspect --config '" + tmp.File("bad.json") + "'"), "\"hidden_size\" is missing");

  fs::copy(DataPath("tiny-dsv4/checkpoint"), tmp.File("ckpt"));
  fs::resize_file(tmp.File("ckpt/model-00003-of-00003.safetensors"), 4096);
  expect_error(RunCli("inspect -m '" + tmp.File("ckpt") + "'"), "model-00003-of-00003.safetensors");
}

}  // namespace
}  // namespace dsv4
