#include "engine/text/python_json.h"

#include <gtest/gtest.h>

#include <limits>

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

// Expected strings are what CPython 3.11's json.dumps(x, ensure_ascii=False) prints.
TEST(PythonJson, FloatsUsePythonsRepr) {
  const std::vector<std::pair<double, std::string>> cases = {
      {1.0, "1.0"},
      {0.1, "0.1"},
      {1e-06, "1e-06"},
      {1e16, "1e+16"},
      {1e15, "1000000000000000.0"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {1.5e-300, "1.5e-300"},
      {-0.0, "-0.0"},
      {0.0, "0.0"},
      {2.5, "2.5"},
      {1e22, "1e+22"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {0.0001, "0.0001"},
      {0.00012345, "0.00012345"},
      {100.0, "100.0"},
      {1234567890123456.7, "1234567890123456.8"},
      {3.14159, "3.14159"},
      {-2.5e-05, "-2.5e-05"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
      {std::numeric_limits<double>::infinity(), "Infinity"},
      {-std::numeric_limits<double>::infinity(), "-Infinity"},
  };
  for (const auto& [value, expected] : cases) {
    EXPECT_EQ(PythonFloatRepr(value), expected);
    EXPECT_EQ(PythonJsonDumps(Json(value)), expected);
  }
}

TEST(PythonJson, SeparatorsOrderAndEscapes) {
  const Json value = Json::parse(
      R"({"a": [1, 2.0, null, true, false, "x\"\\\n\t\u0001\u001f\u007f é 中 😀"], "b": {}, "c": [], "d": {"e": -3}})");
  EXPECT_EQ(PythonJsonDumps(value),
            "{\"a\": [1, 2.0, null, true, false, \"x\\\"\\\\\\n\\t\\u0001\\u001f\x7f é 中 😀\"], \"b\": {}, \"c\": [], "
            "\"d\": {\"e\": -3}}");
  EXPECT_EQ(PythonJsonDumps(Json("\b\f\r")), R"("\b\f\r")");
  // Insertion order, not sorted.
  EXPECT_EQ(PythonJsonDumps(Json::parse(R"({"z": 1, "a": 2})")), R"({"z": 1, "a": 2})");
  EXPECT_EQ(PythonJsonDumps(Json(18446744073709551615ull)), "18446744073709551615");
  EXPECT_EQ(PythonJsonDumps(Json(-9223372036854775807ll - 1)), "-9223372036854775808");
}

}  // namespace
}  // namespace dsv4
