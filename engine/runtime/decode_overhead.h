// What a decode step costs beyond the reads the roofline counts
// (memory_plan.h divides the bytes a token reads by the matvecs' measured
// rates): attention, norms, hyper-connections, routing, the head's logits,
// and the threads' fork/join and waits around every small call. On a
// 2-core Zen 5 that was a fifth to a quarter of a flash4 decode step, which
// the reads alone predicted 1.3-1.4x too fast.
//
// Measured, not modelled: a model of the checkpoint's own widths and first
// layers, with zero weights (synth's sparse shards: written in no time, no
// disk space) and only the experts a token picks, decodes a few dozen
// tokens; what its steps take beyond its own roofline, per layer, is what
// each layer of the real model adds.
#pragma once

#include <cstdint>
#include <string>

#include "engine/model/numerics.h"
#include "engine/runtime/memory_plan.h"
#include "loader/config.h"

namespace dsv4 {

struct DecodeOverhead {
  int64_t layers = 0;            // of the model timed; 0: not measured
  std::string not_timed;         // why not, when layers is 0
  int64_t weight_bytes = 0;      // its resident weights
  double step_seconds = 0;       // its median decode step
  double roofline_seconds = 0;   // its step's reads at the rates given
  double seconds_per_layer = 0;  // max(0, step - roofline) / layers
  // What every main layer of the checkpoint adds to its decode step:
  // DecodeReadRates::step_overhead_seconds.
  double checkpoint_step_seconds = 0;
};

// The timed model has min(4, layers) main layers, fewer if its weights would
// exceed `max_bytes`; `rates` (its step_overhead_seconds ignored) price its
// reads. Threads: the process's OpenMP team, as a run would use it. Where
// not even one layer fits, or the temporary directory cannot take the
// model, nothing is timed (a prediction without the overhead, not a
// failed command) and `not_timed` says why.
DecodeOverhead MeasureDecodeOverhead(const ModelConfig& config, Numerics numerics, const DecodeReadRates& rates,
                                     int64_t max_bytes);

}  // namespace dsv4
