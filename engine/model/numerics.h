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
};

Numerics ParseNumerics(const std::string& name);  // "default" | "smooth"
const char* NumericsName(Numerics numerics);

}  // namespace dsv4
