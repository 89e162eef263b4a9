// JSON text exactly as Python's `json.dumps(obj, ensure_ascii=False)` writes
// it. The official chat encoder embeds tool schemas and tool-call arguments in
// prompts this way, so one differing byte changes the token ids the model sees
// (build-notes.md, JSON). nlohmann's own dump() differs: no spaces after ","
// and ":", and its own float format.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace dsv4 {

// Nesting that input JSON may have. nlohmann's copies, comparisons and dump()
// and the writer below recurse once per level, so a request or conversation
// nested ~100,000 deep (200 KB of "[") would overflow the stack; callers
// refuse anything deeper than this first (Python's json module itself stops
// near 1,000 levels with a RecursionError).
inline constexpr size_t kMaxJsonDepth = 512;

// Nesting depth of `value` (a scalar is 0, [] and {} are 1), found without
// recursion, so it is safe on any parsed document.
size_t JsonDepth(const nlohmann::ordered_json& value);

// Separators ", " and ": ", keys in insertion order, non-ASCII characters
// raw, control characters escaped as Python does (\n, \u001b, ...), floats as
// Python's repr (shortest round-trip digits: 1.0, 1e-05, 1e+16, NaN,
// Infinity). Strings are written byte for byte; they are expected to hold
// UTF-8, which nlohmann's parser guarantees. Throws dsv4::Error for a value
// nested deeper than kMaxJsonDepth.
void AppendPythonJson(const nlohmann::ordered_json& value, std::string& out);
std::string PythonJsonDumps(const nlohmann::ordered_json& value);

// Python's repr() of a float (what json.dumps writes for a finite float).
std::string PythonFloatRepr(double value);

}  // namespace dsv4
