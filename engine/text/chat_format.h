// The official DeepSeek-V4 chat encoding (encoding_dsv4.py, spec §7): turns an
// OpenAI-style conversation into the prompt text the model was trained on.
// Roles: system, user, assistant, tool, developer, latest_reminder. Tool
// results are merged into user turns (ordered like the preceding calls),
// tool schemas and calls are written in DSML, earlier reasoning is dropped
// unless tools are present, and the reasoning mode picks the generation
// prompt ("</think>" for chat, "<think>" for think and think-max).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dsv4 {

// Special-token texts the encoding writes; look their ids up with Tokenizer::TokenId.
namespace chat_tokens {
inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kLatestReminder = "<｜latest_reminder｜>";
inline constexpr std::string_view kThinkStart = "<think>";
inline constexpr std::string_view kThinkEnd = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
}  // namespace chat_tokens

// The DSML markup of tool calls (spec §7.2), shared by renderer and parser.
namespace dsml {
inline constexpr std::string_view kToolCallsOpen = "<｜DSML｜tool_calls>";
inline constexpr std::string_view kToolCallsClose = "</｜DSML｜tool_calls>";
inline constexpr std::string_view kInvokeOpen = "<｜DSML｜invoke";  // + ` name="NAME">`
inline constexpr std::string_view kInvokeClose = "</｜DSML｜invoke>";
inline constexpr std::string_view kParameterOpen = "<｜DSML｜parameter";  // + ` name="K" string="true|false">`
inline constexpr std::string_view kParameterClose = "</｜DSML｜parameter>";
}  // namespace dsml

// chat = non-think (thinking_mode "chat"); think = thinking, default effort;
// think-max = thinking with reasoning_effort "max" (MAX_PREFIX after BOS).
enum class ReasoningMode { kChat, kThink, kThinkMax };

// "chat", "think" or "think-max"; throws dsv4::Error otherwise.
ReasoningMode ParseReasoningMode(std::string_view name);
std::string_view ReasoningModeName(ReasoningMode mode);
inline bool IsThinking(ReasoningMode mode) { return mode != ReasoningMode::kChat; }

// encode_messages(messages, thinking_mode, drop_thinking=True,
// add_default_bos_token=True, reasoning_effort) byte for byte. `messages` is a
// JSON array of message objects. Throws dsv4::Error naming the message on an
// unknown role, a missing tool function, a developer turn without content, an
// unknown task, or a field of the wrong type. Where the official encoder would
// write Python's "None" (a null latest_reminder or tool content) this writes
// an empty string; tool-call arguments that are not a JSON object are written
// as one "arguments" parameter holding the raw text, as the official encoder
// does for arguments that do not parse.
std::string RenderChat(const nlohmann::ordered_json& messages, ReasoningMode mode);

// [{"role": "system", "content": system}] (when given) + [{"role": "user",
// "content": user}]: the conversation of `dsv4 run -p TEXT [--system S]`.
nlohmann::ordered_json SingleTurnConversation(std::string_view user, std::optional<std::string_view> system);

// Request-level tools and response_format go to the first system message,
// one inserted at the start if there is none (contracts.md §5); either may
// be null.
void AttachToSystem(nlohmann::ordered_json& messages, const nlohmann::ordered_json* tools,
                    const nlohmann::ordered_json* response_format);

}  // namespace dsv4
