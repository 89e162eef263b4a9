#include "simd/piece_runs.h"

#include <algorithm>
#include <cmath>

namespace dsv4 {
namespace {

// The work of `rows` rows of y = x W^T with `batch` input rows, in bytes of
// weights and scales read plus a byte per eight multiply-adds (the balance of a machine
// that does some 16 flops per byte of read bandwidth): the few-row products
// of decode go with the bytes, wider batches with the arithmetic. A row of
// no columns still counts, as the zeros it writes.
double RowsWork(const WeightMatrix& w, int64_t rows, int64_t batch) {
  const double bytes_per_row = static_cast<double>(w.Bytes()) / static_cast<double>(std::max<int64_t>(1, w.rows));
  return static_cast<double>(rows) *
         (bytes_per_row + static_cast<double>(w.cols) * static_cast<double>(batch) / 8.0 + 1.0);
}

uint64_t Ends(uint32_t front, uint32_t back) { return static_cast<uint64_t>(back) << 32 | front; }
uint32_t Front(uint64_t ends) { return static_cast<uint32_t>(ends); }
uint32_t Back(uint64_t ends) { return static_cast<uint32_t>(ends >> 32); }
uint32_t Left(uint64_t ends) { return Back(ends) > Front(ends) ? Back(ends) - Front(ends) : 0; }

}  // namespace

PieceRuns::PieceRuns(const std::vector<const WeightMatrix*>& products, const std::vector<int64_t>& batches,
                     int threads)
    : runs_(std::make_unique<Run[]>(threads)), threads_(threads) {
  double total = 0;
  uint32_t pieces = 0;
  for (size_t p = 0; p < products.size(); ++p) {
    rows_.push_back(products[p]->rows);
    first_piece_.push_back(pieces);
    pieces += static_cast<uint32_t>((products[p]->rows + kPieceRows - 1) / kPieceRows);
    total += RowsWork(*products[p], products[p]->rows, batches[p]);
  }
  first_piece_.push_back(pieces);
  // Thread t's run starts at the first piece whose middle lies at or past
  // t / threads of the total work; within a product every piece but the
  // last is alike, so the piece follows from a division.
  std::vector<uint32_t> firsts(threads + 1, pieces);
  firsts[0] = 0;
  int t = 1;
  double before = 0;
  for (size_t p = 0; p < products.size() && t < threads; ++p) {
    const int64_t count = first_piece_[p + 1] - first_piece_[p];
    if (count == 0) continue;
    const double full = RowsWork(*products[p], std::min(kPieceRows, rows_[p]), batches[p]);
    const double last = RowsWork(*products[p], rows_[p] - (count - 1) * kPieceRows, batches[p]);
    const double last_middle = before + static_cast<double>(count - 1) * full + last / 2;
    for (; t < threads; ++t) {
      const double target = total * t / threads;
      if (last_middle < target) break;
      const double j = std::ceil((target - before) / full - 0.5);
      firsts[t] = first_piece_[p] + static_cast<uint32_t>(std::clamp<double>(j, 0, static_cast<double>(count - 1)));
    }
    before += static_cast<double>(count - 1) * full + last;
  }
  for (int r = 0; r < threads; ++r) {
    firsts[r + 1] = std::max(firsts[r + 1], firsts[r]);
    runs_[r].ends.store(Ends(firsts[r], firsts[r + 1]), std::memory_order_relaxed);
  }
}

RowPiece PieceRuns::Piece(uint32_t index) const {
  const size_t p = static_cast<size_t>(std::upper_bound(first_piece_.begin(), first_piece_.end(), index) -
                                       first_piece_.begin()) -
                   1;
  const int64_t begin = static_cast<int64_t>(index - first_piece_[p]) * kPieceRows;
  return {p, begin, std::min(rows_[p], begin + kPieceRows)};
}

bool PieceRuns::TakeFront(Run& run, uint32_t* first, uint32_t* last) {
  uint64_t ends = run.ends.load(std::memory_order_relaxed);
  do {
    if (Left(ends) == 0) return false;
    *first = Front(ends);
    *last = *first + std::max<uint32_t>(1, Left(ends) / 2);
  } while (!run.ends.compare_exchange_weak(ends, Ends(*last, Back(ends)), std::memory_order_relaxed));
  return true;
}

bool PieceRuns::TakeBack(uint32_t* piece) {
  for (;;) {
    Run* most = nullptr;
    uint32_t most_left = 0;
    for (int t = 0; t < threads_; ++t) {
      const uint32_t left = Left(runs_[t].ends.load(std::memory_order_relaxed));
      if (left > most_left) most = &runs_[t], most_left = left;
    }
    if (most == nullptr) return false;
    uint64_t ends = most->ends.load(std::memory_order_relaxed);
    if (Left(ends) > 0 &&
        most->ends.compare_exchange_strong(ends, Ends(Front(ends), Back(ends) - 1), std::memory_order_relaxed)) {
      *piece = Back(ends) - 1;
      return true;
    }
  }
}

}  // namespace dsv4
