#include "engine/model/numerics.h"

#include "loader/error.h"

namespace dsv4 {

Numerics ParseNumerics(const std::string& name) {
  if (name == "default") return Numerics::kDefault;
  if (name == "smooth") return Numerics::kSmooth;
  if (name == "fast") return Numerics::kFast;
  throw Error("--numerics: \"" + name + "\" is not one of default, smooth, fast");
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
