// AppendPythonJson / PythonFloatRepr (what the chat encoding writes for tool
// schemas and arguments) on arbitrary JSON: the text must parse back to the
// same value, and JSON nested deeper than kMaxJsonDepth (and only that) is
// refused with dsv4::Error; JsonDepth must agree. The first 8 bytes, as a double, must survive PythonFloatRepr
// exactly. (nlohmann reads an overflowing number such as 1e400 as infinity,
// which Python writes as Infinity, not JSON: such values are not compared.)
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "engine/text/python_json.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;
using Json = nlohmann::ordered_json;

namespace {

bool HasNonFinite(const Json& value) {
  if (value.is_number_float()) return !std::isfinite(value.get<double>());
  for (const Json& element : value) {
    if (element.is_structured() || element.is_number_float()) {
      if (HasNonFinite(element)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size >= 8) {
    double value;
    std::memcpy(&value, data, 8);
    const std::string repr = PythonFloatRepr(value);
    if (std::isfinite(value)) {
      char* end = nullptr;
      const double back = std::strtod(repr.c_str(), &end);
      fuzz::Check(*end == '\0' && std::memcmp(&back, &value, 8) == 0, "PythonFloatRepr round-trips: " + repr);
      fuzz::Check(repr.find_first_of(".e") != std::string::npos, "a float's repr has a '.' or an exponent: " + repr);
    }
  }
  const Json value = Json::parse(fuzz::AsText(data, size), nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return 0;
  const size_t depth = JsonDepth(value);
  std::string text;
  try {
    text = PythonJsonDumps(value);
  } catch (const Error& e) {
    fuzz::Check(depth > kMaxJsonDepth, std::string("PythonJsonDumps refused JSON of a depth it takes: ") + e.what());
    return 0;
  } catch (const std::exception& e) {
    fuzz::Finding(std::string("PythonJsonDumps threw a non-dsv4 exception: ") + e.what());
  }
  fuzz::Check(depth <= kMaxJsonDepth, "PythonJsonDumps wrote JSON nested deeper than kMaxJsonDepth");
  if (HasNonFinite(value)) return 0;
  const Json back = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  fuzz::Check(!back.is_discarded(), "PythonJsonDumps wrote invalid JSON: " + text.substr(0, 200));
  fuzz::Check(back == value, "PythonJsonDumps round-trips");
  return 0;
}
