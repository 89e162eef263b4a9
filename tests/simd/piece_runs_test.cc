#include "simd/piece_runs.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <thread>
#include <vector>

namespace dsv4 {
namespace {

WeightMatrix F32Matrix(int64_t rows, int64_t cols) {
  WeightMatrix w;
  w.format = WeightFormat::kF32;
  w.rows = rows;
  w.cols = cols;
  return w;
}

// Every output row of `products`, counted as the pieces are worked.
struct RowCounts {
  explicit RowCounts(const std::vector<WeightMatrix>& products) {
    for (const WeightMatrix& w : products) counts.emplace_back(static_cast<size_t>(w.rows));
  }
  void Add(const RowPiece& piece) {
    for (int64_t r = piece.begin; r < piece.end; ++r) counts[piece.product][r].fetch_add(1);
  }
  std::vector<std::vector<std::atomic<int>>> counts;
};

std::vector<const WeightMatrix*> Pointers(const std::vector<WeightMatrix>& products) {
  std::vector<const WeightMatrix*> pointers;
  for (const WeightMatrix& w : products) pointers.push_back(&w);
  return pointers;
}

TEST(PieceRunsTest, OneThreadTakesEveryRowOnceInAlignedPiecesOfOneProduct) {
  // A team of one where three were planned: it takes its own run, then the others'.
  const std::vector<WeightMatrix> products = {F32Matrix(100, 64), F32Matrix(0, 64), F32Matrix(64, 8),
                                              F32Matrix(33, 256)};
  PieceRuns runs(Pointers(products), {1, 1, 4, 2}, 3);
  RowCounts rows(products);
  runs.Take(0, 1, [&](const RowPiece& piece) {
    ASSERT_LT(piece.product, products.size());
    EXPECT_LT(piece.begin, piece.end);
    EXPECT_EQ(piece.begin % kPieceRows, 0);
    EXPECT_LE(piece.end, products[piece.product].rows);
    rows.Add(piece);
  });
  for (size_t p = 0; p < products.size(); ++p) {
    for (size_t r = 0; r < rows.counts[p].size(); ++r) EXPECT_EQ(rows.counts[p][r].load(), 1) << p << ", row " << r;
  }
}

TEST(PieceRunsTest, AThreadClaimsHalfOfWhatIsLeftOfItsRunAtATime) {
  const std::vector<WeightMatrix> products = {F32Matrix(1024, 64)};
  PieceRuns runs(Pointers(products), {1}, 1);
  std::vector<std::pair<int64_t, int64_t>> calls;
  runs.Take(0, 1, [&](const RowPiece& piece) { calls.emplace_back(piece.begin, piece.end); });
  const std::vector<std::pair<int64_t, int64_t>> halves = {{0, 512},   {512, 768},  {768, 896},
                                                           {896, 960}, {960, 992}, {992, 1024}};
  EXPECT_EQ(calls, halves);
}

TEST(PieceRunsTest, IdleThreadsTakeTheRunOfALateOne) {
  // Thread 0 starts only after every other thread's Take returned: they must
  // have taken its whole run from the back, and every row exactly once.
  constexpr int kThreads = 4;
  const std::vector<WeightMatrix> products = {F32Matrix(4096, 512), F32Matrix(2048, 1024), F32Matrix(700, 128)};
  PieceRuns runs(Pointers(products), {1, 1, 3}, kThreads);
  RowCounts rows(products);
  std::atomic<int> done{0};
  std::vector<int64_t> rows_of(kThreads, 0);
#pragma omp parallel num_threads(kThreads)
  {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    if (n == kThreads) {
      if (t == 0) {
        while (done.load() < kThreads - 1) std::this_thread::yield();
      }
      runs.Take(t, n, [&](const RowPiece& piece) {
        rows.Add(piece);
        rows_of[t] += piece.end - piece.begin;
      });
      done.fetch_add(1);
    }
  }
  if (done.load() != kThreads) GTEST_SKIP() << "OpenMP gave a smaller team";
  EXPECT_EQ(rows_of[0], 0);
  for (size_t p = 0; p < products.size(); ++p) {
    for (size_t r = 0; r < rows.counts[p].size(); ++r) EXPECT_EQ(rows.counts[p][r].load(), 1) << p << ", row " << r;
  }
}

TEST(PieceRunsTest, EmptyProductsLeaveNothingToTake) {
  const std::vector<WeightMatrix> products = {F32Matrix(0, 64), F32Matrix(0, 0)};
  PieceRuns runs(Pointers(products), {1, 1}, 2);
  int calls = 0;
  runs.Take(0, 1, [&](const RowPiece&) { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace dsv4
