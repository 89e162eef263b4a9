#include "engine/text/chat_format.h"

#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "engine/text/python_json.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using namespace chat_tokens;

constexpr std::string_view kMaxPrefix =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, "
    "rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered "
    "alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

constexpr std::string_view kResponseFormatIntro =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

// TOOLS_TEMPLATE of encoding_dsv4.py with {dsml_token}, {thinking_start_token}
// and {thinking_end_token} filled in; the schemas go between the two halves.
constexpr std::string_view kToolsBeforeSchemas =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME\">\n<｜DSML｜parameter name=\"$PARAMETER_NAME\" "
    "string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME2\">\n...\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be specified as "
    "is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON "
    "format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by <think>), you MUST output your "
    "complete reasoning inside <think>...</think> BEFORE any tool calls or final response.\n\nOtherwise, output "
    "directly after </think> with tool calls or final response.\n\n### Available Tool Schemas\n\n";
constexpr std::string_view kToolsAfterSchemas =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";

const std::map<std::string, std::string_view, std::less<>> kTaskTokens = {
    {"action", "<｜action｜>"},       {"query", "<｜query｜>"}, {"authority", "<｜authority｜>"},
    {"domain", "<｜domain｜>"},       {"title", "<｜title｜>"}, {"read_url", "<｜read_url｜>"},
};

// A message after preprocessing, with the index it had in the input (for errors).
struct Turn {
  Json message;
  size_t source;
};

// Python truthiness of a JSON value (what `if x:` and `x or ""` test).
bool Truthy(const Json* value) {
  if (!value || value->is_null()) return false;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_number()) return value->get<double>() != 0;
  if (value->is_string()) return !value->get_ref<const std::string&>().empty();
  return !value->empty();
}

const Json* Get(const Json& object, std::string_view key) {
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string Role(const Json& message) {
  const Json* role = Get(message, "role");
  return role && role->is_string() ? role->get<std::string>() : "";
}

[[noreturn]] void Fail(size_t source, const std::string& message) {
  throw Error("messages[" + std::to_string(source) + "]: " + message);
}

// A text field that may be absent or null (read as ""), else must be a string.
std::string Text(const Json& object, std::string_view key, size_t source, const std::string& what) {
  const Json* value = Get(object, key);
  if (!value || value->is_null()) return "";
  if (!value->is_string()) Fail(source, what + " must be a string");
  return value->get<std::string>();
}

// merge_tool_messages: every tool message becomes a tool_result block of a
// user message (a new one, or the preceding merged one); a user message
// becomes a text block, appended to a preceding merged user message unless
// that one carries a task.
std::vector<Turn> MergeToolMessages(const Json& messages) {
  std::vector<Turn> merged;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& message = messages[i];
    const std::string role = Role(message);
    const bool after_user_blocks =
        !merged.empty() && Role(merged.back().message) == "user" && merged.back().message.contains("content_blocks");
    if (role == "tool") {
      Json block = {{"type", "tool_result"},
                    {"tool_use_id", Get(message, "tool_call_id") ? message["tool_call_id"] : Json("")},
                    {"content", Get(message, "content") ? message["content"] : Json("")}};
      if (after_user_blocks) {
        merged.back().message["content_blocks"].push_back(std::move(block));
      } else {
        merged.push_back({Json{{"role", "user"}, {"content_blocks", Json::array({std::move(block)})}}, i});
      }
    } else if (role == "user") {
      const Json content = Get(message, "content") ? message["content"] : Json("");
      Json block = {{"type", "text"}, {"text", content}};
      const Json* previous_task = after_user_blocks ? Get(merged.back().message, "task") : nullptr;
      if (after_user_blocks && (!previous_task || previous_task->is_null())) {
        merged.back().message["content_blocks"].push_back(std::move(block));
      } else {
        Json user = {{"role", "user"}, {"content", content}, {"content_blocks", Json::array({std::move(block)})}};
        for (const char* key : {"task", "wo_eos", "mask"}) {
          if (message.contains(key)) user[key] = message[key];
        }
        merged.push_back({std::move(user), i});
      }
    } else {
      merged.push_back({message, i});
    }
  }
  return merged;
}

// sort_tool_results_by_call_order: tool results in a user message follow the
// order of the tool_calls ids of the most recent assistant message with calls.
void SortToolResults(std::vector<Turn>& turns) {
  std::map<std::string, size_t> call_order;
  for (Turn& turn : turns) {
    Json& message = turn.message;
    const std::string role = Role(message);
    if (role == "assistant" && Truthy(Get(message, "tool_calls"))) {
      call_order.clear();
      const Json& calls = message["tool_calls"];
      if (!calls.is_array()) Fail(turn.source, "tool_calls must be an array");
      for (size_t k = 0; k < calls.size(); ++k) {
        const Json* id = calls[k].is_object() ? Get(calls[k], "id") : nullptr;
        if (!Truthy(id) && calls[k].is_object() && Get(calls[k], "function") && calls[k]["function"].is_object()) {
          id = Get(calls[k]["function"], "id");
        }
        if (Truthy(id) && id->is_string()) call_order[id->get<std::string>()] = k;
      }
    } else if (role == "user" && Truthy(Get(message, "content_blocks"))) {
      Json& blocks = message["content_blocks"];
      std::vector<size_t> slots;
      std::vector<Json> results;
      for (size_t k = 0; k < blocks.size(); ++k) {
        if (blocks[k].value("type", "") == "tool_result") {
          slots.push_back(k);
          results.push_back(blocks[k]);
        }
      }
      if (results.size() < 2 || call_order.empty()) continue;
      auto rank = [&](const Json& block) -> size_t {
        const Json* id = Get(block, "tool_use_id");
        if (!id || !id->is_string()) return 0;
        const auto it = call_order.find(id->get<std::string>());
        return it == call_order.end() ? 0 : it->second;
      };
      std::stable_sort(results.begin(), results.end(),
                       [&](const Json& a, const Json& b) { return rank(a) < rank(b); });
      for (size_t k = 0; k < slots.size(); ++k) blocks[slots[k]] = std::move(results[k]);
    }
  }
}

int64_t LastUserIndex(const std::vector<Turn>& turns) {
  for (int64_t i = static_cast<int64_t>(turns.size()) - 1; i >= 0; --i) {
    const std::string role = Role(turns[i].message);
    if (role == "user" || role == "developer") return i;
  }
  return -1;
}

// _drop_thinking_messages: before the last user/developer turn, assistant
// turns lose their reasoning and developer turns (and unlisted roles) go.
std::vector<Turn> DropThinking(std::vector<Turn> turns) {
  const int64_t last_user = LastUserIndex(turns);
  std::vector<Turn> kept;
  for (int64_t i = 0; i < static_cast<int64_t>(turns.size()); ++i) {
    const std::string role = Role(turns[i].message);
    if (role == "user" || role == "system" || role == "tool" || role == "latest_reminder" || i >= last_user) {
      kept.push_back(std::move(turns[i]));
    } else if (role == "assistant") {
      turns[i].message.erase("reasoning_content");
      kept.push_back(std::move(turns[i]));
    }
  }
  return kept;
}

std::string ToolsSection(const Json& tools, size_t source) {
  if (!tools.is_array()) Fail(source, "tools must be an array");
  std::string out(kToolsBeforeSchemas);
  for (size_t k = 0; k < tools.size(); ++k) {
    if (!tools[k].is_object() || !tools[k].contains("function")) {
      Fail(source, "tools[" + std::to_string(k) + "] has no \"function\" (OpenAI tool format expected)");
    }
    if (k > 0) out += "\n";
    AppendPythonJson(tools[k]["function"], out);
  }
  out += kToolsAfterSchemas;
  return out;
}

// The "\n\n"-prefixed tools and response-format suffixes of system and developer turns.
std::string SystemSuffixes(const Json& message, size_t source) {
  std::string out;
  if (Truthy(Get(message, "tools"))) out += "\n\n" + ToolsSection(message["tools"], source);
  if (Truthy(Get(message, "response_format"))) {
    out += "\n\n";
    out += kResponseFormatIntro;
    AppendPythonJson(message["response_format"], out);
  }
  return out;
}

std::string ToolResultText(const Json& content, size_t source) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) Fail(source, "tool content must be a string or a list of content blocks");
  std::string out;
  for (size_t k = 0; k < content.size(); ++k) {
    if (k > 0) out += "\n\n";
    const Json& block = content[k];
    const Json* type = block.is_object() ? Get(block, "type") : nullptr;
    if (type && *type == "text") {
      out += Text(block, "text", source, "tool content text");
    } else {
      out += "[Unsupported " + (type && type->is_string() ? type->get<std::string>() : std::string("None")) + "]";
    }
  }
  return out;
}

std::string UserText(const Json& message, size_t source) {
  const Json* blocks = Get(message, "content_blocks");
  if (!Truthy(blocks)) return Text(message, "content", source, "content");
  std::string out;
  for (size_t k = 0; k < blocks->size(); ++k) {
    if (k > 0) out += "\n\n";
    const Json& block = (*blocks)[k];
    const std::string type = block.value("type", "");
    if (type == "text") {
      out += Text(block, "text", source, "content");
    } else if (type == "tool_result") {
      out += "<tool_result>" + ToolResultText(block.contains("content") ? block["content"] : Json(""), source) +
             "</tool_result>";
    } else {
      out += "[Unsupported " + type + "]";
    }
  }
  return out;
}

// One DSML <invoke>: the call's arguments (an OpenAI JSON string) become one
// parameter per top-level key; strings are written raw, other values as JSON.
std::string Invoke(const Json& call, size_t source) {
  if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) {
    Fail(source, "each tool call needs a \"function\" object");
  }
  const Json& function = call["function"];
  const Json* name = Get(function, "name");
  if (!name || !name->is_string()) Fail(source, "tool call function.name must be a string");
  const Json arguments = Get(function, "arguments") ? function["arguments"] : Json();
  Json parameters;
  if (arguments.is_string()) {
    parameters = Json::parse(arguments.get_ref<const std::string&>(), nullptr, /*allow_exceptions=*/false);
  }
  if (!parameters.is_object()) parameters = Json{{"arguments", arguments}};
  // tool_call_template: "<invoke name=...>\n" + parameters joined by "\n" + "\n</invoke>"
  // (so a call without arguments has an empty line).
  std::string out;
  out.append(dsml::kInvokeOpen).append(" name=\"").append(name->get_ref<const std::string&>()).append("\">\n");
  bool first = true;
  for (const auto& [key, value] : parameters.items()) {
    if (!first) out += "\n";
    first = false;
    out.append(dsml::kParameterOpen).append(" name=\"").append(key).append("\" string=\"");
    if (value.is_string()) {
      out.append("true\">").append(value.get_ref<const std::string&>());
    } else {
      out.append("false\">");
      AppendPythonJson(value, out);
    }
    out.append(dsml::kParameterClose);
  }
  return out.append("\n").append(dsml::kInvokeClose);
}

std::string AssistantText(const std::vector<Turn>& turns, size_t index, bool thinking, bool drop_thinking,
                          int64_t last_user) {
  const Json& message = turns[index].message;
  const size_t source = turns[index].source;
  std::string out;
  const Json* previous_task = index > 0 ? Get(turns[index - 1].message, "task") : nullptr;
  const bool after_task = previous_task && !previous_task->is_null();
  if (thinking && !after_task && (!drop_thinking || static_cast<int64_t>(index) > last_user)) {
    out += Text(message, "reasoning_content", source, "reasoning_content");
    out += kThinkEnd;
  }
  out += Text(message, "content", source, "content");
  if (Truthy(Get(message, "tool_calls"))) {
    const Json& calls = message["tool_calls"];
    if (!calls.is_array()) Fail(source, "tool_calls must be an array");
    out.append("\n\n").append(dsml::kToolCallsOpen).append("\n");
    for (size_t k = 0; k < calls.size(); ++k) {
      if (k > 0) out += "\n";
      out += Invoke(calls[k], source);
    }
    out.append("\n").append(dsml::kToolCallsClose);
  }
  if (!Truthy(Get(message, "wo_eos"))) out += kEos;
  return out;
}

std::string RenderTurn(const std::vector<Turn>& turns, size_t index, ReasoningMode mode, bool drop_thinking) {
  const bool thinking = IsThinking(mode);
  const Json& message = turns[index].message;
  const size_t source = turns[index].source;
  const int64_t last_user = LastUserIndex(turns);
  const std::string role = Role(message);
  std::string out;
  if (index == 0 && mode == ReasoningMode::kThinkMax) out += kMaxPrefix;

  if (role == "system") {
    out += Text(message, "content", source, "content") + SystemSuffixes(message, source);
  } else if (role == "developer") {
    if (!Truthy(Get(message, "content"))) Fail(source, "a developer message needs non-empty content");
    out += std::string(kUser) + Text(message, "content", source, "content") + SystemSuffixes(message, source);
  } else if (role == "user") {
    out += std::string(kUser) + UserText(message, source);
  } else if (role == "latest_reminder") {
    out += std::string(kLatestReminder) + Text(message, "content", source, "content");
  } else if (role == "assistant") {
    out += AssistantText(turns, index, thinking, drop_thinking, last_user);
  } else {
    Fail(source, "unknown role \"" + role + "\"");
  }

  // What follows the turn: nothing when another non-assistant turn comes next;
  // otherwise the task token, or the assistant prompt after a user turn.
  if (index + 1 < turns.size()) {
    const std::string next = Role(turns[index + 1].message);
    if (next != "assistant" && next != "latest_reminder") return out;
  }
  const Json* task = Get(message, "task");
  if (task && !task->is_null()) {
    const auto it = task->is_string() ? kTaskTokens.find(task->get<std::string>()) : kTaskTokens.end();
    if (it == kTaskTokens.end()) {
      Fail(source, "unknown task " + task->dump() + " (expected action, query, authority, domain, title or read_url)");
    }
    if (it->first == "action") {
      out += std::string(kAssistant) + std::string(thinking ? kThinkStart : kThinkEnd);
    }
    out += it->second;
  } else if (role == "user" || role == "developer") {
    const bool open_thinking = thinking && (!drop_thinking || static_cast<int64_t>(index) >= last_user);
    out += std::string(kAssistant) + std::string(open_thinking ? kThinkStart : kThinkEnd);
  }
  return out;
}

}  // namespace

ReasoningMode ParseReasoningMode(std::string_view name) {
  if (name == "chat") return ReasoningMode::kChat;
  if (name == "think") return ReasoningMode::kThink;
  if (name == "think-max") return ReasoningMode::kThinkMax;
  throw Error("unknown reasoning mode \"" + std::string(name) + "\" (expected chat, think or think-max)");
}

std::string_view ReasoningModeName(ReasoningMode mode) {
  switch (mode) {
    case ReasoningMode::kChat: return "chat";
    case ReasoningMode::kThink: return "think";
    case ReasoningMode::kThinkMax: return "think-max";
  }
  return "chat";
}

std::string RenderChat(const Json& messages, ReasoningMode mode) {
  if (!messages.is_array()) throw Error("messages must be a JSON array of message objects");
  // Rendering copies and writes the messages recursively (python_json.h).
  if (JsonDepth(messages) > kMaxJsonDepth) {
    throw Error("messages nest JSON more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) Fail(i, "must be a JSON object");
    const Json* role = Get(messages[i], "role");
    if (!role || !role->is_string()) Fail(i, "message has no \"role\" string");
    // Checked up front: the official encoder raises on an unknown role only
    // when it renders it, and silently drops one before the last user turn
    // in thinking mode.
    static const std::set<std::string, std::less<>> kRoles = {"system",    "user",      "assistant",
                                                               "tool",      "developer", "latest_reminder"};
    if (!kRoles.count(role->get_ref<const std::string&>())) {
      Fail(i, "unknown role " + role->dump() + " (expected system, user, assistant, tool, developer or latest_reminder)");
    }
  }
  std::vector<Turn> turns = MergeToolMessages(messages);
  SortToolResults(turns);
  // Tools anywhere keep every turn's reasoning (the model needs it across tool calls).
  const bool drop_thinking =
      std::none_of(turns.begin(), turns.end(), [](const Turn& t) { return Truthy(Get(t.message, "tools")); });
  if (IsThinking(mode) && drop_thinking) turns = DropThinking(std::move(turns));

  std::string prompt(kBos);
  for (size_t i = 0; i < turns.size(); ++i) prompt += RenderTurn(turns, i, mode, drop_thinking);
  return prompt;
}

Json SingleTurnConversation(std::string_view user, std::optional<std::string_view> system) {
  Json messages = Json::array();
  if (system) messages.push_back({{"role", "system"}, {"content", std::string(*system)}});
  messages.push_back({{"role", "user"}, {"content", std::string(user)}});
  return messages;
}

void AttachToSystem(Json& messages, const Json* tools, const Json* response_format) {
  if (!tools && !response_format) return;
  auto system = std::find_if(messages.begin(), messages.end(),
                             [](const Json& m) { return m.is_object() && m.contains("role") && m["role"] == "system"; });
  if (system == messages.end()) {
    messages.insert(messages.begin(), Json{{"role", "system"}, {"content", ""}});
    system = messages.begin();
  }
  if (tools) (*system)["tools"] = *tools;
  if (response_format) (*system)["response_format"] = *response_format;
}

}  // namespace dsv4
