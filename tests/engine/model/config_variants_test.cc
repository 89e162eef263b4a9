// The forward pass on synthetic checkpoints of configurations the fixture
// does not have: every hyperparameter of spec §1.6 varied. Without golden
// data for them, the checks are self-consistency ones that the reference's
// math implies (spec §4.13): one prefill, chunks and token-by-token feeding
// give the same logits within golden-B tolerance in smooth numerics, and
// default numerics stay finite and close to smooth.
#include <gtest/gtest.h>


#include <cmath>
#include <numeric>

#include "engine/runtime/sequence_runner.h"
#include "loader/synth.h"
#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Variant {
  const char* name;
  void (*edit)(ModelConfig&);
};

ModelConfig SmallBase() {
  ModelConfig c = TinyConfig();
  c.hidden_size = 128;
  c.vocab_size = 300;
  c.num_attention_heads = 4;
  c.head_dim = 128;
  c.q_lora_rank = 96;
  c.o_groups = 2;
  c.o_lora_rank = 64;
  c.index_n_heads = 4;
  c.index_head_dim = 128;
  c.index_topk = 8;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 3;
  c.moe_intermediate_size = 64;
  c.sliding_window = 16;
  return c;
}

const Variant kVariants[] = {
    {"window_only_after_compressed_and_unrelated_hash_layers",
     [](ModelConfig& c) {
       c.num_hidden_layers = 6;
       c.compress_ratios = {4, 0, 128, 0, 4, 0, 0};  // + MTP
       c.num_hash_layers = 4;
     }},
    {"odd_heads_groups_and_narrow_heads",
     [](ModelConfig& c) {
       c.num_attention_heads = 6;
       c.o_groups = 3;
       c.o_lora_rank = 96;  // group boundaries inside 128-row scale blocks
       c.head_dim = 96;
       c.qk_rope_head_dim = 32;
     }},
    {"indexer_shape_and_small_topk",
     [](ModelConfig& c) {
       c.index_n_heads = 3;
       c.index_head_dim = 64;
       c.qk_rope_head_dim = 32;
       c.head_dim = 96;
       c.index_topk = 3;
     }},
    {"routing_scaling_sinkhorn_and_rope",
     [](ModelConfig& c) {
       c.hc_mult = 3;
       c.hc_sinkhorn_iters = 7;
       c.routed_scaling_factor = 2.5;
       c.swiglu_limit = 0.0;  // no clamp
       c.norm_topk_prob = false;
       c.rope_theta = 50000;
       c.compress_rope_theta = 1e6;
       c.rope_scaling.factor = 4;
       c.rope_scaling.original_max_position_embeddings = 32;
       c.rope_scaling.beta_fast = 8;
       c.rope_scaling.beta_slow = 2;
       c.num_hash_layers = 0;
       c.n_shared_experts = 0;
     }},
    {"no_yarn_no_mtp_ratio_8",
     [](ModelConfig& c) {
       c.rope_scaling.yarn = false;
       c.num_nextn_predict_layers = 0;
       c.num_hidden_layers = 3;
       c.compress_ratios = {8, 4, 0};
       c.weight_block_rows = 64;
       c.weight_block_cols = 32;
     }},
};

std::vector<int32_t> Tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int32_t> tokens(n);
  for (int64_t i = 0; i < n; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    tokens[i] = static_cast<int32_t>((seed >> 33) % vocab);
  }
  return tokens;
}

class ConfigVariants : public ::testing::TestWithParam<Variant> {};

TEST_P(ConfigVariants, PrefillChunksAndTokenByTokenAgree) {
  ModelConfig config = SmallBase();
  GetParam().edit(config);
  config = ModelConfig::FromJson(config.ToJson(), GetParam().name);
  testing::TempDir dir;
  SynthOptions options;
  options.seed = 7;
  SynthesizeCheckpoint(config, options, dir.File("model"));
  Checkpoint checkpoint(dir.File("model"));
  const std::vector<int32_t> prompt = Tokens(150, config.vocab_size, 11);
  const int64_t vocab = config.vocab_size;

  Model smooth(checkpoint, Numerics::kSmooth);
  auto all_logits = [&](const Model& model, int64_t chunk) {
    SequenceRunner runner(model, chunk);
    return runner.Feed(prompt, true);
  };
  const std::vector<float> reference = all_logits(smooth, 0);
  const int64_t last = prompt.size() - 1;
  for (int64_t chunk : {1, 17}) {
    const testing::GoldenScore score =
        testing::Score(all_logits(smooth, chunk), reference, vocab, last, testing::kToleranceB);
    EXPECT_EQ(score.failures, "") << "chunk " << chunk << " worst d " << score.worst_d;
  }
  for (float v : reference) ASSERT_TRUE(std::isfinite(v));

  Model exact(checkpoint, Numerics::kDefault);
  const std::vector<float> with_round_trips = all_logits(exact, 32);
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    ASSERT_TRUE(std::isfinite(with_round_trips[i]));
    max_abs = std::max(max_abs, std::fabs(static_cast<double>(reference[i])));
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(with_round_trips[i]) - reference[i]));
  }
  // The round trips perturb, they do not scramble (on the fixture the A-B
  // gap is about a third of the logit range).
  EXPECT_LT(max_diff, max_abs);

  if (config.num_nextn_predict_layers > 0) {
    SequenceState state(config, Numerics::kDefault);
    std::vector<TokenRow> rows;
    for (int64_t p = 0; p < 20; ++p) rows.push_back({prompt[p], p, &state});
    std::vector<float> streams;
    exact.Forward(rows, {}, nullptr, &streams);
    std::vector<TokenRow> mtp_rows;
    for (int64_t p = 0; p < 19; ++p) mtp_rows.push_back({prompt[p + 1], p, &state});
    std::vector<float> mtp(19 * vocab);
    std::vector<int64_t> all(19);
    std::iota(all.begin(), all.end(), 0);
    exact.ForwardMtp(mtp_rows, streams.data(), all, mtp.data());
    for (float v : mtp) ASSERT_TRUE(std::isfinite(v));
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, ConfigVariants, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dsv4
