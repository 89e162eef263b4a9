// ParseCompletion on arbitrary model output, in every reasoning mode. It is
// documented never to throw: any exception is a finding. On valid UTF-8
// (decoded model output always is), every tool call's arguments must be a
// JSON object and the message must serialize.
#include <cstdint>
#include <string>

#include "engine/text/chat_parser.h"
#include "engine/text/utf8.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;
using Json = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::AsText(data, size);
  const bool utf8 = !FindInvalidUtf8(text);
  for (const ReasoningMode mode : {ReasoningMode::kChat, ReasoningMode::kThink, ReasoningMode::kThinkMax}) {
    try {
      const ParsedCompletion parsed = ParseCompletion(text, mode);
      fuzz::Check(parsed.tool_calls.is_array(), "tool_calls is an array");
      fuzz::Check(IsThinking(mode) || parsed.reasoning_content.empty(), "no reasoning in chat mode");
      if (!utf8) continue;
      for (const Json& call : parsed.tool_calls) {
        const std::string& arguments = call.at("function").at("arguments").get_ref<const std::string&>();
        const Json parsed_arguments = Json::parse(arguments, nullptr, /*allow_exceptions=*/false);
        fuzz::Check(parsed_arguments.is_object(), "tool call arguments are a JSON object: " + arguments);
      }
      parsed.ToMessage().dump();
    } catch (const std::exception& e) {
      fuzz::Finding(std::string("ParseCompletion (documented never to throw) threw: ") + e.what());
    }
  }
  return 0;
}
