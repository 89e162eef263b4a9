// Parses what the model generated after a rendered prompt (spec §7.4,
// parse_message_from_completion_text) into reasoning, answer and OpenAI-style
// tool calls. Unlike the official parser, which raises on the first
// irregularity, this one is lenient: it never throws on malformed output,
// keeps what it can and lists what was wrong in `warnings`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/chat_format.h"

namespace dsv4 {

struct ParsedCompletion {
  std::string reasoning_content;  // empty in chat mode
  std::string content;
  // [{"type": "function", "function": {"name": ..., "arguments": "<JSON object text>"}}]
  nlohmann::ordered_json tool_calls = nlohmann::ordered_json::array();
  bool ended = false;                 // the end-of-sentence token was found
  std::vector<std::string> warnings;  // empty when the output is well-formed

  // {"role": "assistant", "content", "reasoning_content", "tool_calls"}: what
  // the official parser returns, ready to append to the conversation.
  nlohmann::ordered_json ToMessage() const;
};

// `completion` is the decoded generated text, including the final
// "<｜end▁of▁sentence｜>" when the model produced it. In thinking modes the
// prompt ended with "<think>", so the completion starts with the reasoning.
ParsedCompletion ParseCompletion(std::string_view completion, ReasoningMode mode);

}  // namespace dsv4
