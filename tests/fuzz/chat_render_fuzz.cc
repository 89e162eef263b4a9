// RenderChat on the JSON a user gives: a `dsv4 render` row {"messages": [...],
// "mode": "chat|think|think-max"} (every mode when "mode" is absent), or a
// bare messages array (every mode). Text that is not JSON is skipped (the
// callers refuse it before rendering). Bad conversations must throw
// dsv4::Error; a rendered prompt starts with BOS and is valid UTF-8 (the
// tokenizer refuses anything else).
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/chat_format.h"
#include "engine/text/utf8.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;
using Json = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Json row = Json::parse(fuzz::AsText(data, size), nullptr, /*allow_exceptions=*/false);
  if (row.is_discarded()) return 0;
  const Json* messages = &row;
  std::vector<ReasoningMode> modes = {ReasoningMode::kChat, ReasoningMode::kThink, ReasoningMode::kThinkMax};
  if (row.is_object()) {
    const auto m = row.find("messages");
    if (m == row.end()) return 0;
    messages = &*m;
    const auto mode = row.find("mode");
    if (mode != row.end()) {
      if (!mode->is_string()) return 0;
      bool known = true;
      fuzz::Expect("ParseReasoningMode", [&] {
        known = false;
        modes = {ParseReasoningMode(mode->get<std::string>())};
        known = true;
      });
      if (!known) return 0;
    }
  }
  for (const ReasoningMode mode : modes) {
    fuzz::Expect("RenderChat", [&] {
      const std::string prompt = RenderChat(*messages, mode);
      fuzz::Check(prompt.starts_with(chat_tokens::kBos), "the prompt starts with BOS");
      fuzz::Check(!FindInvalidUtf8(prompt), "the prompt is valid UTF-8");
    });
  }
  return 0;
}
