// Joining the outputs of the shards of one batch (`dsv4 merge`): the outputs
// of `dsv4 batch --shard I/N` for I = 0..N-1, from N machines, become one
// file that answers every input line exactly once, as one unsharded run would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dsv4 {

struct MergeSummary {
  int64_t lines = 0;    // answered input lines (blank lines are not requests)
  int64_t shards = 0;
};

// Checks that the parts are the outputs of shards 0..N-1 (each once) of runs
// over `input` with one model and one set of defaults (their sidecars say),
// that each part is complete (no torn last line), and that every input line
// has exactly one record across them and no record answers no line; then
// writes `output` (records in input-line order) through a temporary file and
// a rename. Throws dsv4::Error naming what is wrong: the lines without a
// record, the records found twice, the shards missing.
MergeSummary MergeBatchOutputs(const std::string& input, const std::vector<std::string>& parts,
                               const std::string& output);

}  // namespace dsv4
