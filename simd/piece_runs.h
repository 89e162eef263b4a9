// How the threads of one team share the output rows of one or more weight
// products (a MatMul, the steps of an expert group): in pieces of
// kPieceRows rows, dealt out as one contiguous run per thread of about equal
// estimated work. A thread claims half of what is left of its own run at a
// time, so its first claims are long (each product's rows of a claim run as
// one kernel call: the expert group's w1 and w3 read 10-15 % slower from DRAM
// when they alternated every 32 rows); once its run is done, it takes pieces
// one by one from the back of the run with the most left. So the threads
// end together although the estimate is off: an FP4 row decodes slower per
// byte than an FP8 row (1.2-1.6x on Zen 5), and a core may be interrupted or
// share its memory bandwidth; with fixed runs alone, the thread holding the
// FP4 experts of a decode layer ran up to 40 % longer than the one holding
// the FP8 shared expert while the other waited at the barrier.
//
// Each row is computed by one thread, and a kernel's bits for a row do not
// depend on the rows beside it in the call: which thread takes a piece
// changes no output bit.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "simd/weight_matrix.h"

namespace dsv4 {

// Rows per piece: a multiple of the kernels' passes and tiles (8 and 16
// rows) that divides the 128-row FP8 scale blocks, so no pass of a piece
// straddles one; 70-140 KB of FP4 or FP8 weights at Flash's expert shapes.
constexpr int64_t kPieceRows = 32;

// Output rows [begin, end) of product `product`.
struct RowPiece {
  size_t product;
  int64_t begin, end;
};

class PieceRuns {
 public:
  // The products' rows (each with its batch of input rows) for a team of
  // `threads`; pieces of empty products are skipped.
  PieceRuns(const std::vector<const WeightMatrix*>& products, const std::vector<int64_t>& batches, int threads);

  // Runs `work(RowPiece)` on rows of one product at a time until no piece is
  // left, for thread `thread` of a team of `threads` (the team may come out
  // smaller than planned: thread t then owns runs t, t + threads, ...).
  template <typename Work>
  void Take(int thread, int threads, const Work& work) {
    for (int own = thread; own < threads_; own += threads) {
      for (uint32_t first, last; TakeFront(runs_[own], &first, &last);) {
        RowPiece rows = Piece(first);
        for (uint32_t i = first + 1; i < last; ++i) {
          const RowPiece next = Piece(i);
          if (next.product == rows.product) {
            rows.end = next.end;
          } else {
            work(rows);
            rows = next;
          }
        }
        work(rows);
      }
    }
    for (uint32_t piece; TakeBack(&piece);) work(Piece(piece));
  }

 private:
  // A run's front and back piece indices in one word, claimed by one
  // compare-and-swap; its own cache line.
  struct alignas(64) Run {
    std::atomic<uint64_t> ends{0};
  };

  RowPiece Piece(uint32_t index) const;
  // Half of what is left of `run` (at least a piece) from its front: [first, last).
  static bool TakeFront(Run& run, uint32_t* first, uint32_t* last);
  // The last piece of the run with the most left; false once none is left.
  bool TakeBack(uint32_t* piece);

  std::vector<int64_t> rows_;          // of each product
  std::vector<uint32_t> first_piece_;  // of each product, and the piece count last
  std::unique_ptr<Run[]> runs_;
  int threads_;
};

}  // namespace dsv4
