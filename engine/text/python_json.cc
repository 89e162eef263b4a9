#include "engine/text/python_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "loader/error.h"

namespace dsv4 {
namespace {

void AppendPythonString(const std::string& text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run_start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text, run_start, i - run_start);
    run_start = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:  // Python writes the remaining control characters as \u00xx, lowercase hex.
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(text, run_start, std::string::npos);
  out.push_back('"');
}

template <typename Int>
void AppendInteger(Int value, std::string& out) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

void AppendPythonJsonAt(const nlohmann::ordered_json& value, size_t depth, std::string& out);

}  // namespace

size_t JsonDepth(const nlohmann::ordered_json& value) {
  size_t deepest = 0;
  std::vector<std::pair<const nlohmann::ordered_json*, size_t>> pending = {{&value, 0}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    if (!node->is_structured()) continue;
    deepest = std::max(deepest, depth + 1);
    for (const auto& child : *node) pending.emplace_back(&child, depth + 1);
  }
  return deepest;
}

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  // Shortest digits that round-trip, then Python's layout rule (float_repr_style
  // "short"): with value = 0.DIGITS x 10^point, scientific notation iff
  // point <= -4 or point > 16.
  char buffer[40];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  const std::string_view text(buffer, result.ptr - buffer);
  const size_t e = text.find('e');
  std::string out, digits;  // out starts with the sign
  for (char c : text.substr(0, e)) {
    if (c == '-') out.push_back('-');
    else if (c != '.') digits.push_back(c);
  }
  const int exponent = std::atoi(std::string(text.substr(e + 1)).c_str());
  const int point = exponent + 1;
  const int count = static_cast<int>(digits.size());
  // Built with append(): GCC 12 warns falsely (-Wrestrict) on "..." + std::string.
  if (point > -4 && point <= 16) {
    if (point <= 0) {
      out.append("0.").append(-point, '0').append(digits);
    } else if (point < count) {
      out.append(digits, 0, point).append(".").append(digits, point);
    } else {
      out.append(digits).append(point - count, '0').append(".0");
    }
    return out;
  }
  out.append(digits, 0, 1);
  if (count > 1) out.append(".").append(digits, 1);
  char exponent_text[8];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%+03d", exponent);
  return out.append(exponent_text);
}

void AppendPythonJson(const nlohmann::ordered_json& value, std::string& out) { AppendPythonJsonAt(value, 0, out); }

namespace {

void AppendPythonJsonAt(const nlohmann::ordered_json& value, size_t depth, std::string& out) {
  using Type = nlohmann::ordered_json::value_t;
  if (value.is_structured() && depth >= kMaxJsonDepth) {
    throw Error("JSON nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  switch (value.type()) {
    case Type::null: out += "null"; return;
    case Type::boolean: out += value.get<bool>() ? "true" : "false"; return;
    case Type::number_integer: AppendInteger(value.get<int64_t>(), out); return;
    case Type::number_unsigned: AppendInteger(value.get<uint64_t>(), out); return;
    case Type::number_float: out += PythonFloatRepr(value.get<double>()); return;
    case Type::string: AppendPythonString(value.get_ref<const std::string&>(), out); return;
    case Type::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : value) {
        if (!first) out += ", ";
        first = false;
        AppendPythonJsonAt(element, depth + 1, out);
      }
      out.push_back(']');
      return;
    }
    case Type::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out += ", ";
        first = false;
        AppendPythonString(key, out);
        out += ": ";
        AppendPythonJsonAt(element, depth + 1, out);
      }
      out.push_back('}');
      return;
    }
    case Type::binary:
    case Type::discarded: break;
  }
  throw Error("JSON value of a type Python's json module cannot write (binary or discarded)");
}

}  // namespace

std::string PythonJsonDumps(const nlohmann::ordered_json& value) {
  std::string out;
  AppendPythonJson(value, out);
  return out;
}

}  // namespace dsv4
