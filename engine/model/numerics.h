// Which numerics the forward pass follows (spec, "Which numerics").
#pragma once

#include <string>

namespace dsv4 {

enum class Numerics {
  // f32 activations, weights decoded exactly, plus the model's own round
  // trips: FP8 on the non-RoPE dims of KV rows (§3.4), Hadamard + FP4 on the
  // indexer queries and rows (§3.5-3.6). Golden variant A.
  kDefault,
  // The same without the two round trips: continuous math, golden variant B.
  kSmooth,
  // kDefault with the activations of the weight GEMMs of prefill chunks and
  // large batches rounded to bf16 on the CPU's matrix engine (oneDNN on
  // AMX-BF16 or AVX512-BF16; simd/matrix_engine.h). Opt-in and lossy: golden
  // variant A with C's tolerances. Deterministic for one batch composition,
  // but a row's bits may depend on how many rows share the call.
  kFast,
};

Numerics ParseNumerics(const std::string& name);  // "default" | "smooth" | "fast"
// Throws a one-line error for kFast on a CPU without a bf16 matrix unit
// (engine/model/model.cc; the CLI calls it before loading, Model again).
void CheckNumericsSupported(Numerics numerics);
// The --numerics help text every command shows.
inline constexpr const char* kNumericsHelp =
    "default (exact f32) | smooth (no KV/indexer round trips) | fast (bf16 activations on the matrix engine "
    "(AMX-BF16, AVX512-BF16) for prefill chunks and batches of 32+ rows: faster prefill, slightly different "
    "answers that may also change with --parallel and the chunk size)";
const char* NumericsName(Numerics numerics);
// Whether the model's own FP8 (KV rows) and FP4 (indexer) round trips run.
inline bool HasRoundTrips(Numerics numerics) { return numerics != Numerics::kSmooth; }

}  // namespace dsv4
