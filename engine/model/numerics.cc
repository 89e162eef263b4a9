#include "engine/model/numerics.h"

#include "loader/error.h"

namespace dsv4 {

Numerics ParseNumerics(const std::string& name) {
  if (name == "default") return Numerics::kDefault;
  if (name == "smooth") return Numerics::kSmooth;
  throw Error("--numerics: \"" + name + "\" is not one of default, smooth");
}

const char* NumericsName(Numerics numerics) { return numerics == Numerics::kDefault ? "default" : "smooth"; }

}  // namespace dsv4
