// The forward pass against tiny-dsv4's golden logits (variants A and B) on
// every sequence, every stored prompt position and every decode row.
#include <gtest/gtest.h>


#include <cstdio>
#include <numeric>

#include "engine/model/model.h"
#include "simd/matmul.h"
#include "simd/matrix_engine.h"
#include "tests/support/for_each_target.h"
#include "tests/support/golden.h"
#include "tests/support/matmul_kernels_scope.h"

namespace dsv4 {
namespace {

using testing::Golden;
using testing::GoldenSequence;

struct RunLogits {
  std::vector<float> prefill;  // rows at the stored prefill positions
  std::vector<float> decode;
};

// Prompt as chunks of `chunk` rows (0 = one prefill), then decode one by one.
RunLogits Run(const Model& model, const Golden& golden, const GoldenSequence& s, int64_t chunk) {
  const int64_t vocab = model.config().vocab_size;
  const std::vector<int32_t> stored = golden.Ints(s, "prefill_positions");
  SequenceState state(model.config(), model.numerics());
  RunLogits out;
  out.prefill.resize(stored.size() * vocab);
  const int64_t n = s.prompt.size();
  if (chunk <= 0) chunk = n;
  size_t next_stored = 0;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    std::vector<TokenRow> rows;
    std::vector<int64_t> wanted;
    for (int64_t p = begin; p < end; ++p) {
      rows.push_back({s.prompt[p], p, &state});
      if (next_stored < stored.size() && stored[next_stored] == p) {
        wanted.push_back(p - begin);
        ++next_stored;
      }
    }
    model.Forward(rows, wanted, out.prefill.data() + (next_stored - wanted.size()) * vocab);
  }
  out.decode.resize(s.decode_tokens.size() * vocab);
  for (size_t j = 0; j < s.decode_tokens.size(); ++j) {
    model.Forward({{s.decode_tokens[j], n + static_cast<int64_t>(j), &state}}, {0}, out.decode.data() + j * vocab);
  }
  return out;
}

void ExpectGolden(Numerics numerics, const testing::Tolerance& tolerance, const char* variant, int64_t chunk,
                  MatMulImpl kernels = MatMulImpl::kReference) {
  const testing::MatMulKernelsScope scope(kernels);
  Golden golden;
  Checkpoint checkpoint(golden.checkpoint_dir());
  Model model(checkpoint, numerics);
  const int64_t vocab = model.config().vocab_size;
  for (const GoldenSequence& s : golden.sequences()) {
    RunLogits run = Run(model, golden, s, chunk);
    std::vector<float> engine = run.prefill, expected = golden.Floats(s, std::string(variant) + ".prefill_logits");
    const int64_t last_prompt_row = static_cast<int64_t>(run.prefill.size() / vocab) - 1;
    engine.insert(engine.end(), run.decode.begin(), run.decode.end());
    const std::vector<float> decode = golden.Floats(s, std::string(variant) + ".decode_logits");
    expected.insert(expected.end(), decode.begin(), decode.end());
    const testing::GoldenScore score = testing::Score(engine, expected, vocab, last_prompt_row, tolerance);
    std::printf("%s %-13s rows %3d close %3d top1 %3d worst d %.3g min cos %.6f last prompt d %.3g\n", variant,
                s.name.c_str(), score.rows, score.close, score.top1_agree, score.worst_d, score.min_cosine,
                score.last_prompt_d);
    EXPECT_EQ(score.failures, "") << variant << " " << s.name;
  }
}

TEST(GoldenLogits, VariantBSmooth) { ExpectGolden(Numerics::kSmooth, testing::kToleranceB, "B", 0); }
TEST(GoldenLogits, VariantADefault) { ExpectGolden(Numerics::kDefault, testing::kToleranceA, "A", 0); }
TEST(GoldenLogits, VariantBChunked) { ExpectGolden(Numerics::kSmooth, testing::kToleranceB, "B", 37); }
TEST(GoldenLogits, VariantBTokenByToken) { ExpectGolden(Numerics::kSmooth, testing::kToleranceB, "B", 1); }

// --numerics fast: the prefill GEMMs (37- and 700-row chunks: at least
// kBf16MinRows) round their activations to bf16 on the matrix engine; decode
// rows stay exact. Checked against A's data with C's tolerances (README).
TEST(GoldenLogits, VariantAFastWithCTolerances) {
  if (Bf16MatrixUnit().empty()) GTEST_SKIP() << "oneDNN has no bf16 matmul on this CPU";
  ExpectGolden(Numerics::kFast, testing::kToleranceC, "A", 0, MatMulImpl::kSimd);
  ExpectGolden(Numerics::kFast, testing::kToleranceC, "A", 37, MatMulImpl::kSimd);
}

// The SIMD kernels: batched matmuls (every prefill here) are bit-identical
// to the reference; single-row matvecs (the decode rows) sum in their own
// order. On every compiled target. Variant A's long sequence holds a window-KV element within about
// 3e-7 (relative) of an E4M3 rounding midpoint, so these tests also guard
// that the batched path keeps the reference's rounding (docs/performance.md,
// "Numerics and the SIMD kernels").
TEST(GoldenLogits, VariantBSmoothSimdKernels) {
  testing::ForEachTarget([] { ExpectGolden(Numerics::kSmooth, testing::kToleranceB, "B", 0, MatMulImpl::kSimd); });
}
TEST(GoldenLogits, VariantASimdKernels) {
  testing::ForEachTarget([] { ExpectGolden(Numerics::kDefault, testing::kToleranceA, "A", 0, MatMulImpl::kSimd); });
}

// MTP protocol of the fixture README: the MTP block runs over prompt
// positions i = 0 .. n-2 from an empty state, taking the final streams at i
// and token i+1; row r of mtp_logits is position mtp_first_position + r.
TEST(GoldenLogits, MtpVariantA) {
  Golden golden;
  Checkpoint checkpoint(golden.checkpoint_dir());
  Model model(checkpoint, Numerics::kDefault);
  const int64_t vocab = model.config().vocab_size;
  int checked = 0;
  for (const GoldenSequence& s : golden.sequences()) {
    if (!golden.Has(s, "A.mtp_logits")) continue;
    const int64_t n = s.prompt.size();
    SequenceState state(model.config(), model.numerics());
    std::vector<TokenRow> rows;
    for (int64_t p = 0; p < n; ++p) rows.push_back({s.prompt[p], p, &state});
    std::vector<float> streams;
    model.Forward(rows, {}, nullptr, &streams);
    std::vector<TokenRow> mtp_rows;
    for (int64_t i = 0; i + 1 < n; ++i) mtp_rows.push_back({s.prompt[i + 1], i, &state});
    std::vector<float> logits((n - 1) * vocab);
    std::vector<int64_t> all(n - 1);
    std::iota(all.begin(), all.end(), 0);
    model.ForwardMtp(mtp_rows, streams.data(), all, logits.data());
    const std::vector<float> expected = golden.Floats(s, "A.mtp_logits");
    const int64_t stored = expected.size() / vocab, first = n - 1 - stored;
    const std::vector<float> engine(logits.begin() + first * vocab, logits.end());
    const testing::GoldenScore score = testing::Score(engine, expected, vocab, -1, testing::kToleranceA);
    std::printf("MTP %-13s rows %3d close %3d top1 %3d worst d %.3g\n", s.name.c_str(), score.rows, score.close,
                score.top1_agree, score.worst_d);
    EXPECT_EQ(score.failures, "") << s.name;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace dsv4
