// The compact KV layout and the spill file change nothing: logits stay
// bit-identical to the plain f32 layout on the long fixture sequence.
#include <gtest/gtest.h>

#include <cstring>

#include "engine/model/model.h"
#include "engine/runtime/sequence_runner.h"
#include "tests/support/golden.h"
#include "tests/support/matmul_kernels_scope.h"
#include "loader/error.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

struct Fixture {
  testing::MatMulKernelsScope kernels{MatMulImpl::kSimd};
  testing::Golden golden;
  Checkpoint checkpoint{golden.checkpoint_dir()};
  Model model{checkpoint, Numerics::kDefault};
  const testing::GoldenSequence& long_sequence = golden.sequences()[2];
};

// The 700-token prompt in chunks of 100, then 12 decode tokens; the logits
// of the last prompt position and of each decode step.
struct KvUse {
  int64_t ram = 0, spilled = 0;
  int64_t unspillable = 0;  // indexer rows, HCA rows and each CSA store's partial last page
  // Layers without an indexer (HCA): their rows, those of them in RAM, and
  // those decoded for attention.
  int64_t hca_rows = 0, hca_rows_in_ram = 0, hca_rows_decoded = 0;
};

std::vector<float> RunLong(const Fixture& f, const KvOptions& kv, KvUse* use = nullptr) {
  SequenceRunner runner(f.model, 100, kv);
  std::vector<float> logits = runner.Feed(f.long_sequence.prompt, false);
  for (size_t j = 0; j < 12; ++j) {
    const std::vector<float> row = runner.Feed({f.long_sequence.decode_tokens[j]}, false);
    logits.insert(logits.end(), row.begin(), row.end());
  }
  if (use) {
    const SequenceState& state = runner.state();
    use->ram = state.kv_ram_bytes();
    use->spilled = state.kv_spilled_bytes();
    for (int64_t L = 0; L < state.num_layers(); ++L) {
      const LayerState& layer = state.layer(L);
      if (layer.indexer_rows) use->unspillable += layer.indexer_rows->resident_bytes();
      if (layer.compressed && layer.indexer_rows) {
        use->unspillable += KvRowStore::kRowsPerPage * layer.compressed->codec().bytes_per_row();
      } else if (layer.compressed) {
        use->unspillable += layer.compressed->resident_bytes();
        use->unspillable += static_cast<int64_t>(layer.decoded_rows.capacity() * sizeof(float));
        use->hca_rows += layer.compressed->size();
        use->hca_rows_in_ram += layer.compressed->resident_bytes() / layer.compressed->codec().bytes_per_row();
        use->hca_rows_decoded += static_cast<int64_t>(layer.decoded_rows.size()) / layer.compressed->codec().dim();
      }
    }
  }
  return logits;
}

bool BitIdentical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(KvStore, CompactLayoutIsBitIdenticalToPlainAndSmaller) {
  Fixture f;
  KvOptions plain;
  plain.compact = false;
  KvUse plain_use, compact_use;
  const std::vector<float> reference = RunLong(f, plain, &plain_use);
  const std::vector<float> compact = RunLong(f, KvOptions{}, &compact_use);
  EXPECT_TRUE(BitIdentical(reference, compact));
  EXPECT_LT(compact_use.ram * 2, plain_use.ram);
}

TEST(KvStore, SpillWithTinyBudgetIsBitIdentical) {
  Fixture f;
  testing::TempDir dir;
  const std::vector<float> reference = RunLong(f, KvOptions{});
  for (int64_t budget : {0, 3000}) {
    KvOptions spill;
    spill.spill_dir = dir.path();
    spill.ram_budget = budget;
    KvUse use;
    EXPECT_TRUE(BitIdentical(reference, RunLong(f, spill, &use))) << "budget " << budget;
    EXPECT_GT(use.spilled, 0) << "budget " << budget;
    EXPECT_LE(use.ram, budget + use.unspillable) << "budget " << budget;
  }
}

// HCA layers attend to all their rows at every step: the rows stay in RAM
// whatever the budget, and each is decoded once, not once per step.
TEST(KvStore, HcaRowsStayInRamAndAreDecodedOnce) {
  Fixture f;
  testing::TempDir dir;
  KvOptions spill;
  spill.spill_dir = dir.path();
  spill.ram_budget = 0;
  KvUse use;
  RunLong(f, spill, &use);
  ASSERT_GT(use.hca_rows, 0) << "the fixture has an HCA layer";
  EXPECT_GT(use.spilled, 0);
  EXPECT_GE(use.hca_rows_in_ram, use.hca_rows);
  EXPECT_EQ(use.hca_rows_decoded, use.hca_rows);
  // The sequence is too short for a whole page of HCA rows, so the plan is
  // checked too: only CSA rows are spillable; HCA rows, encoded and
  // decoded, count against RAM.
  const ModelConfig& config = f.model.config();
  const KvSize size = SequenceState::Size(config, f.model.numerics(), spill);
  for (const KvSize::Rows& rows : size.spillable_rows) EXPECT_EQ(rows.ratio, 4);
  int64_t hca_ram_rows = 0;
  for (const KvSize::Rows& rows : size.ram_rows) hca_ram_rows += rows.ratio != 4;
  int64_t hca_layers = 0;
  for (int64_t L = 0; L < config.NumBlocks(); ++L) hca_layers += config.CompressRatio(L) > 0 && config.CompressRatio(L) != 4;
  EXPECT_EQ(hca_ram_rows, 2 * hca_layers);
}

TEST(KvStore, UnwritableSpillDirectoryIsAClearError) {
  Fixture f;
  KvOptions spill;
  spill.spill_dir = "/proc/dsv4-no-such-dir";
  spill.ram_budget = 0;
  SequenceRunner runner(f.model, 100, spill);
  try {
    runner.Feed(f.long_sequence.prompt, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--kv-dir"), std::string::npos) << e.what();
  }
  // The failure came between forward calls: every layer holds the same
  // complete chunks, so the sequence can go on or be saved.
  EXPECT_EQ(runner.length() % 100, 0);
  for (int64_t L = 0; L < f.model.config().num_hidden_layers; ++L) {
    EXPECT_EQ(runner.state().layer(L).length, runner.length());
  }
}

}  // namespace
}  // namespace dsv4
