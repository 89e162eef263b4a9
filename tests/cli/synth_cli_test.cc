#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "loader/checkpoint.h"
#include "loader/synth.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::DataPath;
using testing::ReadFile;
using testing::RunCli;
using testing::TempDir;
using testing::WriteFile;
using Json = nlohmann::ordered_json;

// A failed command: exit 1, nothing on stdout, one error line on stderr.
void ExpectCleanError(const testing::CommandResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, StartsWith("dsv4 synth: error: "));
  EXPECT_THAT(r.err, HasSubstr(needle));
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(SynthCli, TinyPreset) {
  TempDir tmp;
  const auto r = RunCli("synth --like tiny --out '" + tmp.File("out") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // progress and logs go to stderr
  EXPECT_THAT(r.err, AllOf(HasSubstr("MB/s"), HasSubstr("100%")));
  Checkpoint ckpt(tmp.File("out"));
  EXPECT_EQ(ckpt.config().ToJson(), TinyConfig().ToJson());
  EXPECT_TRUE(ckpt.unexpected().empty());
}

// The long-context preset: every layer kind and a 1M-token context, small.
TEST(SynthCli, LongContextPreset) {
  TempDir tmp;
  const auto r = RunCli("synth --like long --out '" + tmp.File("out") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Checkpoint ckpt(tmp.File("out"));
  EXPECT_EQ(ckpt.config().ToJson(), LongContextConfig().ToJson());
  EXPECT_EQ(ckpt.config().compress_ratios, (std::vector<int64_t>{0, 0, 4, 128}));
  EXPECT_EQ(ckpt.config().max_position_embeddings, int64_t{1} << 20);
  EXPECT_TRUE(ckpt.unexpected().empty());
}

TEST(SynthCli, OverridesAndSeed) {
  TempDir tmp;
  const std::string args = "synth --like tiny --layers 3 --experts 5 --vocab 300 --max-positions 1000 --seed 3 --out ";
  ASSERT_EQ(RunCli(args + tmp.File("a")).exit_code, 0);
  ASSERT_EQ(RunCli(args + tmp.File("b")).exit_code, 0);
  Checkpoint ckpt(tmp.File("a"));
  const ModelConfig& c = ckpt.config();
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.compress_ratios, (std::vector<int64_t>{0, 0, 4, 0}));
  EXPECT_EQ(c.n_routed_experts, 5);
  EXPECT_EQ(c.num_experts_per_tok, 4);
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_EQ(c.max_position_embeddings, 1000);
  for (const char* file : {"model-00003-of-00006.safetensors", "model.safetensors.index.json", "config.json"}) {
    EXPECT_EQ(ReadFile(tmp.File(std::string("a/") + file)), ReadFile(tmp.File(std::string("b/") + file))) << file;
  }
}

// Without --seed the seed is 0: two runs write the same bytes as --seed 0
// (a demo or test model is the same model every time it is made).
TEST(SynthCli, DefaultSeedIsZero) {
  TempDir tmp;
  const std::string args = "synth --like tiny --layers 2 --experts 4 --vocab 300 --out ";
  ASSERT_EQ(RunCli(args + tmp.File("a")).exit_code, 0);
  ASSERT_EQ(RunCli(args + tmp.File("b")).exit_code, 0);
  ASSERT_EQ(RunCli(args + tmp.File("c") + " --seed 0").exit_code, 0);
  ASSERT_EQ(RunCli(args + tmp.File("d") + " --seed 1").exit_code, 0);
  const std::string shard = "/model-00001-of-00005.safetensors";
  EXPECT_EQ(ReadFile(tmp.File("a") + shard), ReadFile(tmp.File("b") + shard));
  EXPECT_EQ(ReadFile(tmp.File("a") + shard), ReadFile(tmp.File("c") + shard));
  EXPECT_NE(ReadFile(tmp.File("a") + shard), ReadFile(tmp.File("d") + shard));
}

TEST(SynthCli, FromAConfigFileWithTokenizer) {
  TempDir tmp;
  Json config = Json::parse(ReadFile(DataPath("tiny-dsv4/checkpoint/config.json")));
  config["hidden_size"] = 128;
  config["num_attention_heads"] = 4;
  WriteFile(tmp.File("config.json"), config.dump());
  const auto r = RunCli("synth --config '" + tmp.File("config.json") + "' --layers 2 --tokenizer '" +
                        DataPath("tokenizer/tokenizer.json") + "' --out '" + tmp.File("out") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Checkpoint ckpt(tmp.File("out"));
  EXPECT_EQ(ckpt.config().hidden_size, 128);
  EXPECT_EQ(ckpt.config().num_hidden_layers, 2);
  EXPECT_EQ(ReadFile(tmp.File("out/tokenizer.json")), ReadFile(DataPath("tokenizer/tokenizer.json")));
  EXPECT_TRUE(fs::exists(tmp.File("out/tokenizer_config.json")));
}

TEST(SynthCli, BadArguments) {
  TempDir tmp;
  const std::string out = " --out '" + tmp.File("out") + "'";
  ExpectCleanError(RunCli("synth --like tiny"), "--out");
  ExpectCleanError(RunCli("synth" + out), "exactly one of --like");
  ExpectCleanError(RunCli("synth --like tiny --config x.json" + out), "exactly one of --like");
  ExpectCleanError(RunCli("synth --like huge" + out), "\"huge\" is not a preset");
  ExpectCleanError(RunCli("synth --like tiny --layers 0" + out), "--layers");
  ExpectCleanError(RunCli("synth --like tiny --layers many" + out), "--layers: \"many\" is not an integer");
  ExpectCleanError(RunCli("synth --like tiny --seed -4" + out), "--seed");
  ExpectCleanError(RunCli("synth --like tiny --vocab 1" + out), "--vocab");
  ExpectCleanError(RunCli("synth --like tiny --bogus 3" + out), "bogus");
  ExpectCleanError(RunCli("synth --like tiny stray" + out), "stray");
  ExpectCleanError(RunCli("synth --like tiny --tokenizer '" + tmp.File("none.json") + "'" + out), tmp.File("none.json"));
  EXPECT_FALSE(fs::exists(tmp.File("out")));
}

TEST(SynthCli, BadConfigFile) {
  TempDir tmp;
  const std::string out = " --out '" + tmp.File("out") + "'";
  ExpectCleanError(RunCli("synth --config '" + tmp.File("missing.json") + "'" + out), tmp.File("missing.json"));
  Json config = Json::parse(ReadFile(DataPath("tiny-dsv4/checkpoint/config.json")));
  config["o_groups"] = 3;
  WriteFile(tmp.File("bad.json"), config.dump());
  ExpectCleanError(RunCli("synth --config '" + tmp.File("bad.json") + "'" + out), "\"o_groups\"");
  WriteFile(tmp.File("broken.json"), "{");
  ExpectCleanError(RunCli("synth --config '" + tmp.File("broken.json") + "'" + out), "not valid JSON");
}

TEST(SynthCli, NeverWritesIntoANonEmptyDirectory) {
  TempDir tmp;
  WriteFile(tmp.File("notes.txt"), "keep me");
  ExpectCleanError(RunCli("synth --like tiny --out '" + tmp.path() + "'"), "not empty");
  EXPECT_EQ(ReadFile(tmp.File("notes.txt")), "keep me");
  EXPECT_FALSE(fs::exists(tmp.File("config.json")));
}

TEST(SynthCli, NotEnoughDiskSpace) {
  TempDir tmp;
  // 2^40 vocabulary rows: petabytes.
  ExpectCleanError(RunCli("synth --like tiny --vocab 1099511627776 --out '" + tmp.File("out") + "'"), "free");
  EXPECT_FALSE(fs::exists(tmp.File("out")));
}

}  // namespace
}  // namespace dsv4
