#include "loader/synth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "loader/checkpoint.h"
#include "loader/error.h"
#include "loader/safetensors_writer.h"
#include "simd/number_formats.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::DataPath;
using testing::ReadFile;
using testing::ErrorOf;
using testing::TempDir;
using Json = nlohmann::ordered_json;

// A small config edited through its JSON, validated like a config.json.
ModelConfig Edited(const ModelConfig& base, const Json& changes) {
  Json json = base.ToJson();
  json.update(changes);
  return ModelConfig::FromJson(json, "test config");
}

uint64_t SumOfTensorBytes(const Checkpoint& ckpt) {
  uint64_t total = 0;
  for (const auto& shard : ckpt.shards()) {
    for (const auto& [name, view] : shard->tensors()) total += view.bytes;
  }
  return total;
}

uint64_t IndexTotalSize(const std::string& dir) {
  return Json::parse(ReadFile(dir + "/model.safetensors.index.json"))["metadata"]["total_size"].get<uint64_t>();
}

// Writes `config` with `seed`, opens it (the schema check runs) and checks the index.
void SynthesizeAndOpen(const ModelConfig& config, const std::string& dir, uint64_t seed = 1) {
  SynthOptions options;
  options.seed = seed;
  SynthesizeCheckpoint(config, options, dir);
  Checkpoint ckpt(dir);
  EXPECT_TRUE(ckpt.unexpected().empty());
  EXPECT_EQ(ckpt.schema().size(), ExpectedTensors(config).size());
  EXPECT_EQ(IndexTotalSize(dir), SumOfTensorBytes(ckpt));
  EXPECT_EQ(ckpt.config().ToJson(), config.ToJson());
}

TEST(SynthPresets, TinyIsTheFixtureConfig) {
  const ModelConfig fixture = ModelConfig::FromFile(DataPath("tiny-dsv4/checkpoint/config.json"));
  EXPECT_EQ(TinyConfig().ToJson(), fixture.ToJson());
}

TEST(SynthPresets, FlashMatchesTheOfficialCensus) {
  const ModelConfig flash = ModelConfig::FromJson(FlashConfig().ToJson(), "flash");
  const std::vector<TensorSpec> schema = ExpectedTensors(flash);
  uint64_t bytes = 0;
  for (const TensorSpec& s : schema) bytes += TensorBytes({s.name, s.dtype, s.shape});
  EXPECT_EQ(schema.size(), 69187u);  // spec §2.1
  EXPECT_EQ(bytes, 159609485896u);
  EXPECT_EQ(flash.compress_ratios.size(), 44u);
  EXPECT_EQ(flash.compress_ratios[42], 4);
  EXPECT_EQ(flash.compress_ratios[43], 0);

  const std::vector<ShardPlan> shards = PlanShards(flash);
  ASSERT_EQ(shards.size(), 46u);
  EXPECT_EQ(shards[0].file, "model-00001-of-00046.safetensors");
  ASSERT_EQ(shards[0].tensors.size(), 1u);
  EXPECT_EQ(shards[0].tensors[0].name, "embed.weight");
  EXPECT_EQ(shards[1].tensors[0].name.rfind("layers.0.", 0), 0u);
  EXPECT_EQ(shards[44].tensors.size(), 5u);  // head, norm, hc_head_{fn,base,scale}
  EXPECT_EQ(shards[45].file, "model-00046-of-00046.safetensors");
  EXPECT_EQ(shards[45].tensors.size(), 1575u);
}

TEST(SynthOverrides, LayersFollowTheFlashPattern) {
  SynthOverrides o;
  o.layers = 4;
  o.experts = 32;
  o.vocab = 4096;
  o.max_positions = 65536;
  const ModelConfig c = ApplyOverrides(FlashConfig(), o);
  EXPECT_EQ(c.compress_ratios, (std::vector<int64_t>{0, 0, 4, 128, 0}));
  EXPECT_EQ(c.num_hash_layers, 3);
  EXPECT_EQ(c.n_routed_experts, 32);
  EXPECT_EQ(c.num_experts_per_tok, 6);
  EXPECT_EQ(c.vocab_size, 4096);
  EXPECT_EQ(c.max_position_embeddings, 65536);

  o = {};
  o.layers = 1;
  o.experts = 4;
  const ModelConfig small = ApplyOverrides(TinyConfig(), o);
  EXPECT_EQ(small.compress_ratios, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(small.num_hash_layers, 1);
  EXPECT_EQ(small.num_experts_per_tok, 4);
}

TEST(SynthOverrides, BadValuesNameTheOption) {
  SynthOverrides o;
  o.layers = 0;
  EXPECT_THAT(ErrorOf([&] { ApplyOverrides(TinyConfig(), o); }), HasSubstr("--layers"));
  o = {};
  o.vocab = 1;
  EXPECT_THAT(ErrorOf([&] { ApplyOverrides(TinyConfig(), o); }), HasSubstr("--vocab"));
  o = {};
  o.experts = -3;
  EXPECT_THAT(ErrorOf([&] { ApplyOverrides(TinyConfig(), o); }), HasSubstr("--experts"));
}

TEST(Synth, TinyOpensWithTheOfficialLayout) {
  TempDir tmp;
  const std::string dir = tmp.File("tiny");
  SynthesizeAndOpen(TinyConfig(), dir);
  // Same tensors and bytes as the fixture; one shard per layer like the official checkpoint.
  EXPECT_EQ(IndexTotalSize(dir), IndexTotalSize(DataPath("tiny-dsv4/checkpoint")));
  Checkpoint ckpt(dir);
  ASSERT_EQ(ckpt.shards().size(), 10u);
  EXPECT_THAT(ckpt.shards()[0]->path(), HasSubstr("model-00001-of-00010.safetensors"));
  EXPECT_EQ(ckpt.shards()[0]->tensors().size(), 1u);
  EXPECT_THAT(*ckpt.Get("layers.0.attn.wq_a.weight").file, HasSubstr("model-00002-of-00010.safetensors"));
  EXPECT_THAT(*ckpt.Get("layers.6.ffn.experts.15.w2.scale").file, HasSubstr("model-00008-of-00010.safetensors"));
  EXPECT_THAT(*ckpt.Get("head.weight").file, HasSubstr("model-00009-of-00010.safetensors"));
  EXPECT_THAT(*ckpt.Get("hc_head_fn").file, HasSubstr("model-00009-of-00010.safetensors"));
  EXPECT_THAT(*ckpt.Get("mtp.0.e_proj.weight").file, HasSubstr("model-00010-of-00010.safetensors"));
  // Every tensor is aligned to its element size in the mapping.
  for (const auto& shard : ckpt.shards()) {
    for (const auto& [name, view] : shard->tensors()) {
      EXPECT_EQ(view.file_offset % DTypeSize(view.dtype), 0u) << name;
    }
  }
}

TEST(Synth, DeterministicGivenTheSeedWhateverTheThreads) {
  TempDir tmp;
  // Wide enough that every generator (BF16, FP8, FP4) takes its multi-threaded path.
  const ModelConfig config = Edited(TinyConfig(), {{"hidden_size", 1024},
                                                   {"moe_intermediate_size", 2048},
                                                   {"n_routed_experts", 1},
                                                   {"num_experts_per_tok", 1},
                                                   {"num_hidden_layers", 1},
                                                   {"num_nextn_predict_layers", 0},
                                                   {"compress_ratios", {4}},
                                                   {"num_hash_layers", 1},
                                                   {"vocab_size", 1000}});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  SynthesizeAndOpen(config, tmp.File("a"), 7);
  omp_set_num_threads(std::max(2, threads));
  SynthesizeAndOpen(config, tmp.File("b"), 7);
  SynthesizeAndOpen(config, tmp.File("c"), 8);
  omp_set_num_threads(threads);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(tmp.File("a"))) {
    const std::string name = entry.path().filename().string();
    const std::string a = ReadFile(entry.path().string());
    EXPECT_EQ(a, ReadFile(tmp.File("b/" + name))) << name;
    if (name.find(".safetensors") != std::string::npos && name.find("index") == std::string::npos) {
      const std::string c = ReadFile(tmp.File("c/" + name));
      EXPECT_EQ(a.size(), c.size());
      EXPECT_NE(a, c) << name << " does not depend on the seed";
    }
    ++files;
  }
  EXPECT_EQ(files, 5);  // 3 shards, index, config
}

// Dequantized value of element (o, i) of an FP8 linear.
float Fp8Value(const Checkpoint& ckpt, const std::string& name, int64_t o, int64_t i) {
  const TensorView& w = ckpt.Get(name + ".weight");
  const TensorView& s = ckpt.Get(name + ".scale");
  const ModelConfig& c = ckpt.config();
  return E4M3ToF32(w.data[o * w.Dim(1) + i]) *
         E8M0ToF32(s.data[(o / c.weight_block_rows) * s.Dim(1) + i / c.weight_block_cols]);
}

float Fp4Value(const Checkpoint& ckpt, const std::string& name, int64_t o, int64_t i) {
  const TensorView& w = ckpt.Get(name + ".weight");
  const TensorView& s = ckpt.Get(name + ".scale");
  const uint8_t byte = w.data[o * w.Dim(1) + i / 2];
  return E2M1ToF32(i % 2 ? byte >> 4 : byte & 15) * E8M0ToF32(s.data[o * s.Dim(1) + i / 32]);
}

struct Moments {
  double mean = 0, stddev = 0;
};

Moments Measure(int64_t n, const std::function<float(int64_t)>& value) {
  double sum = 0, sum2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = value(i);
    EXPECT_TRUE(std::isfinite(v));
    sum += v;
    sum2 += v * v;
  }
  const double mean = sum / n;
  return {mean, std::sqrt(sum2 / n - mean * mean)};
}

TEST(Synth, WeightsFollowTheDocumentedDistributions) {
  TempDir tmp;
  SynthesizeAndOpen(TinyConfig(), tmp.File("tiny"));
  Checkpoint ckpt(tmp.File("tiny"));
  const ModelConfig& c = ckpt.config();

  // FP8 linears: N(0, gain^2 / fan_in) after dequantization.
  auto fp8_gain = [&](const std::string& name) {
    const TensorView& w = ckpt.Get(name + ".weight");
    const int64_t in = w.Dim(1);
    return Measure(w.NumElements(), [&](int64_t k) { return Fp8Value(ckpt, name, k / in, k % in); }).stddev *
           std::sqrt(static_cast<double>(in));
  };
  EXPECT_NEAR(fp8_gain("layers.0.attn.wq_a"), 1.0, 0.05);
  EXPECT_NEAR(fp8_gain("layers.3.attn.wo_b"), 0.5, 0.03);
  EXPECT_NEAR(fp8_gain("layers.2.ffn.shared_experts.w1"), 1.5, 0.08);
  EXPECT_NEAR(fp8_gain("mtp.0.e_proj"), 1.0, 0.05);

  // FP4 experts, scaled per 32 inputs.
  auto fp4_gain = [&](const std::string& name) {
    const TensorView& w = ckpt.Get(name + ".weight");
    const int64_t in = w.Dim(1) * 2;
    return Measure(w.NumElements() * 2, [&](int64_t k) { return Fp4Value(ckpt, name, k / in, k % in); }).stddev *
           std::sqrt(static_cast<double>(in));
  };
  EXPECT_NEAR(fp4_gain("layers.1.ffn.experts.3.w1"), 1.5, 0.1);
  EXPECT_NEAR(fp4_gain("layers.1.ffn.experts.3.w2"), 0.25, 0.02);

  // No NaN codes, no NaN scales, codes use the E4M3 range.
  int max_code = 0;
  for (const TensorSpec& spec : ckpt.schema()) {
    const TensorView& v = ckpt.Get(spec.name);
    for (size_t i = 0; i < v.bytes; ++i) {
      if (spec.dtype == DType::kF8E4M3) {
        ASSERT_NE(v.data[i] & 0x7F, 0x7F) << spec.name;
        max_code = std::max(max_code, v.data[i] & 0x7F);
      }
      if (spec.dtype == DType::kF8E8M0) {
        ASSERT_NE(v.data[i], 255) << spec.name;
      }
    }
  }
  EXPECT_GE(E4M3ToF32(max_code), 224.0f);

  const TensorView& embed = ckpt.Get("embed.weight");
  const Moments e = Measure(embed.NumElements(), [&](int64_t i) { return Bf16ToF32(embed.As<uint16_t>()[i]); });
  EXPECT_NEAR(e.mean, 0.0, 0.01);
  EXPECT_NEAR(e.stddev, 1.0, 0.02);
  const TensorView& norm = ckpt.Get("layers.4.attn_norm.weight");
  const Moments n = Measure(norm.NumElements(), [&](int64_t i) { return Bf16ToF32(norm.As<uint16_t>()[i]); });
  EXPECT_NEAR(n.mean, 1.0, 0.03);
  EXPECT_NEAR(n.stddev, 0.1, 0.03);
  const TensorView& scale = ckpt.Get("layers.4.hc_ffn_scale");
  for (int i = 0; i < 3; ++i) {
    EXPECT_GE(scale.As<float>()[i], 0.3f);
    EXPECT_LT(scale.As<float>()[i], 1.0f);
  }

  // Hash rows: distinct experts in range.
  for (int64_t layer = 0; layer < c.num_hash_layers; ++layer) {
    const TensorView& t = ckpt.Get("layers." + std::to_string(layer) + ".ffn.gate.tid2eid");
    std::vector<int> uses(c.n_routed_experts);
    for (int64_t r = 0; r < t.Dim(0); ++r) {
      std::set<int64_t> row(t.As<int64_t>() + r * t.Dim(1), t.As<int64_t>() + (r + 1) * t.Dim(1));
      ASSERT_EQ(static_cast<int64_t>(row.size()), c.num_experts_per_tok);
      ASSERT_GE(*row.begin(), 0);
      ASSERT_LT(*row.rbegin(), c.n_routed_experts);
      for (int64_t id : row) ++uses[id];
    }
    for (int u : uses) EXPECT_GT(u, 0);  // every expert gets tokens
  }
}

TEST(Synth, UnusualConfigsOpen) {
  TempDir tmp;
  // Window-only layers after compressed ones; hash layers unrelated to them.
  SynthesizeAndOpen(Edited(TinyConfig(), {{"num_hidden_layers", 6},
                                          {"compress_ratios", {4, 128, 0, 4, 0, 16, 0}},
                                          {"num_hash_layers", 4}}),
                    tmp.File("schedule"));
  // Odd head counts and widths: 3 heads in 3 output groups, head_dim 192,
  // partial FP8 blocks (q_lora 96, hidden 160), 5 experts top-3, 2 shared,
  // no MTP, no hash layers, odd vocab, non-square weight blocks.
  SynthesizeAndOpen(Edited(TinyConfig(), {{"hidden_size", 160},
                                          {"num_attention_heads", 3},
                                          {"o_groups", 3},
                                          {"o_lora_rank", 40},
                                          {"head_dim", 192},
                                          {"q_lora_rank", 96},
                                          {"index_n_heads", 3},
                                          {"index_head_dim", 256},
                                          {"n_routed_experts", 5},
                                          {"num_experts_per_tok", 3},
                                          {"n_shared_experts", 2},
                                          {"moe_intermediate_size", 96},
                                          {"num_nextn_predict_layers", 0},
                                          {"num_hash_layers", 0},
                                          {"vocab_size", 77},
                                          {"quantization_config", {{"weight_block_size", {64, 32}}}}}),
                    tmp.File("odd"));
  // Two MTP blocks, no shared expert, two hyper-connection streams, every
  // main layer hash-routed with hash rows holding every expert (top-k = experts).
  SynthesizeAndOpen(Edited(TinyConfig(), {{"num_hidden_layers", 3},
                                          {"num_nextn_predict_layers", 2},
                                          {"compress_ratios", {128, 4, 0, 0, 0}},
                                          {"n_shared_experts", 0},
                                          {"hc_mult", 2},
                                          {"num_hash_layers", 3},
                                          {"n_routed_experts", 4},
                                          {"num_experts_per_tok", 4}}),
                    tmp.File("mtp2"));
  Checkpoint mtp2(tmp.File("mtp2"));
  EXPECT_NE(mtp2.Find("mtp.1.hc_head_fn"), nullptr);
  EXPECT_EQ(mtp2.Get("mtp.1.hc_head_fn").file, mtp2.Get("mtp.0.e_proj.weight").file);
}

TEST(Synth, ZeroWeightsLeaveSparseShardsWithValidRouting) {
  TempDir tmp;
  const std::string dir = tmp.File("zero");
  SynthOptions options;
  options.zero_weights = true;
  SynthesizeCheckpoint(TinyConfig(), options, dir);
  Checkpoint ckpt(dir);
  EXPECT_TRUE(ckpt.unexpected().empty());
  EXPECT_EQ(IndexTotalSize(dir), IndexTotalSize(DataPath("tiny-dsv4/checkpoint")));
  uint64_t file_bytes = 0, disk_bytes = 0;
  for (const auto& shard : ckpt.shards()) {
    struct stat st {};
    ASSERT_EQ(::stat(shard->path().c_str(), &st), 0);
    file_bytes += static_cast<uint64_t>(st.st_size);
    disk_bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    for (const auto& [name, view] : shard->tensors()) {
      if (name.find("tid2eid") != std::string::npos) continue;
      EXPECT_TRUE(std::all_of(view.data, view.data + view.bytes, [](uint8_t b) { return b == 0; })) << name;
    }
  }
  // Holes, apart from headers and hash tables.
  EXPECT_LT(disk_bytes, file_bytes / 2);
  // Hash routing stays a valid permutation prefix per token.
  const ModelConfig& c = ckpt.config();
  const TensorView& t = ckpt.Get("layers.0.ffn.gate.tid2eid");
  for (int64_t r = 0; r < t.Dim(0); ++r) {
    std::set<int64_t> row(t.As<int64_t>() + r * t.Dim(1), t.As<int64_t>() + (r + 1) * t.Dim(1));
    ASSERT_EQ(static_cast<int64_t>(row.size()), c.num_experts_per_tok);
    ASSERT_GE(*row.begin(), 0);
    ASSERT_LT(*row.rbegin(), c.n_routed_experts);
  }
}

TEST(Synth, RefusesANonEmptyDirectoryAndLeavesItAlone) {
  TempDir tmp;
  testing::WriteFile(tmp.File("mine.txt"), "user data");
  const std::string message = ErrorOf([&] { SynthesizeCheckpoint(TinyConfig(), {}, tmp.path()); });
  EXPECT_THAT(message, HasSubstr(tmp.path()));
  EXPECT_THAT(message, HasSubstr("not empty"));
  EXPECT_EQ(ReadFile(tmp.File("mine.txt")), "user data");
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);

  EXPECT_THAT(ErrorOf([&] { SynthesizeCheckpoint(TinyConfig(), {}, tmp.File("mine.txt")); }),
              HasSubstr("not a directory"));
}

TEST(Synth, ValidatesAConfigBuiltInCode) {
  TempDir tmp;
  ModelConfig bad = TinyConfig();
  bad.o_groups = 3;  // does not divide 8 heads
  EXPECT_THAT(ErrorOf([&] { SynthesizeCheckpoint(bad, {}, tmp.File("out")); }), HasSubstr("\"o_groups\""));
  EXPECT_FALSE(fs::exists(tmp.File("out")));
}

TEST(Synth, ChecksDiskSpaceBeforeWriting) {
  TempDir tmp;
  // 2^40 vocabulary rows of 256 BF16 values: more than any disk holds.
  const ModelConfig huge = Edited(TinyConfig(), {{"vocab_size", int64_t{1} << 40}});
  const std::string message = ErrorOf([&] { SynthesizeCheckpoint(huge, {}, tmp.File("out")); });
  EXPECT_THAT(message, HasSubstr(tmp.File("out")));
  EXPECT_THAT(message, HasSubstr("free"));
  EXPECT_FALSE(fs::exists(tmp.File("out")));  // the directory it created is gone again
}

TEST(Synth, CopiesTheTokenizer) {
  TempDir tmp;
  SynthOptions options;
  options.tokenizer = DataPath("tokenizer/tokenizer.json");
  SynthOverrides small;
  small.layers = 2;
  SynthesizeCheckpoint(ApplyOverrides(TinyConfig(), small), options, tmp.File("out"));
  EXPECT_EQ(ReadFile(tmp.File("out/tokenizer.json")), ReadFile(DataPath("tokenizer/tokenizer.json")));
  EXPECT_EQ(ReadFile(tmp.File("out/tokenizer_config.json")), ReadFile(DataPath("tokenizer/tokenizer_config.json")));

  options.tokenizer = tmp.File("nope/tokenizer.json");
  EXPECT_THAT(ErrorOf([&] { SynthesizeCheckpoint(TinyConfig(), options, tmp.File("out2")); }),
              HasSubstr(tmp.File("nope/tokenizer.json")));
  EXPECT_FALSE(fs::exists(tmp.File("out2")));
}

TEST(Synth, ReportsProgressUpToTheTotal) {
  TempDir tmp;
  SynthOptions options;
  SynthProgress last;
  int calls = 0;
  options.progress = [&](const SynthProgress& p) {
    EXPECT_GE(p.bytes_done, last.bytes_done);
    last = p;
    ++calls;
  };
  SynthesizeCheckpoint(TinyConfig(), options, tmp.File("out"));
  EXPECT_GT(calls, 10);
  EXPECT_EQ(last.bytes_done, last.bytes_total);
  EXPECT_EQ(last.shard, 10);
  uint64_t files = 0;
  for (const auto& entry : fs::directory_iterator(tmp.File("out"))) {
    if (entry.path().extension() == ".safetensors") files += entry.file_size();
  }
  EXPECT_EQ(last.bytes_total, files);
  EXPECT_GE(SynthesizedBytes(TinyConfig()), files);
}

}  // namespace
}  // namespace dsv4
