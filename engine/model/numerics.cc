#include "engine/model/numerics.h"

#include "loader/error.h"
#include "simd/matrix_engine.h"

namespace dsv4 {

Numerics ParseNumerics(const std::string& name) {
  if (name == "default") return Numerics::kDefault;
  if (name == "smooth") return Numerics::kSmooth;
  if (name == "fast") {
    CheckNumericsSupported(Numerics::kFast);
    return Numerics::kFast;
  }
  throw Error("--numerics: \"" + name + "\" is not one of default, smooth, fast");
}

void CheckNumericsSupported(Numerics numerics) {
  if (numerics == Numerics::kFast && Bf16MatrixUnit().empty()) {
    throw Error(
        "--numerics fast: this CPU has no bf16 matrix unit oneDNN can use (AMX-BF16 or AVX512-BF16); "
        "use --numerics default");
  }
}

const char* NumericsName(Numerics numerics) {
  switch (numerics) {
    case Numerics::kDefault:
      return "default";
    case Numerics::kSmooth:
      return "smooth";
    case Numerics::kFast:
      return "fast";
  }
  return "?";
}

}  // namespace dsv4
