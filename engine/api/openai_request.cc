#include "engine/api/openai_request.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <tuple>
#include <limits>

#include "engine/text/python_json.h"

namespace dsv4::api {
namespace {

using Json = nlohmann::ordered_json;

std::string TypeName(const Json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

// Typed access to a JSON object's optional fields: absent and null read as
// unset; any other type is a RequestError naming the field.
class Fields {
 public:
  Fields(const Json& object, std::string path) : object_(object), path_(std::move(path)) {}

  const Json* Get(const std::string& key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }
  std::string Name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  [[noreturn]] void Wrong(const std::string& key, const std::string& expected) const {
    throw RequestError(Name(key) + " must be " + expected + " (got " + TypeName(*Get(key)) + ")", Name(key));
  }

  std::optional<double> Number(const std::string& key) const {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) Wrong(key, "a number");
    return v->get<double>();
  }
  std::optional<int64_t> Integer(const std::string& key) const {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (v->is_number_unsigned()) {
      if (v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw RequestError(Name(key) + " is too large", Name(key));
      }
      return static_cast<int64_t>(v->get<uint64_t>());
    }
    if (!v->is_number_integer()) Wrong(key, "an integer");
    return v->get<int64_t>();
  }
  std::optional<bool> Bool(const std::string& key) const {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) Wrong(key, "a boolean");
    return v->get<bool>();
  }
  std::optional<std::string> String(const std::string& key) const {
    const Json* v = Get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) Wrong(key, "a string");
    return v->get<std::string>();
  }
  const Json* Object(const std::string& key) const {
    const Json* v = Get(key);
    if (v && !v->is_object()) Wrong(key, "an object");
    return v;
  }
  const Json* Array(const std::string& key) const {
    const Json* v = Get(key);
    if (v && !v->is_array()) Wrong(key, "an array");
    return v;
  }

 private:
  const Json& object_;
  std::string path_;
};

// The sampling fields both endpoints share, over the command's defaults.
SamplingParams Sampling(const Fields& f, const SamplingParams& defaults) {
  SamplingParams p = defaults;
  p.max_tokens = -1;  // resolved against the context once the prompt is known
  p.seed.reset();
  if (auto v = f.Number("temperature")) p.temperature = *v;
  if (auto v = f.Number("top_p")) p.top_p = *v;
  if (auto v = f.Integer("top_k")) p.top_k = *v == -1 ? 0 : *v;  // -1 is vLLM's "off"
  if (auto v = f.Number("min_p")) p.min_p = *v;
  if (auto v = f.Number("presence_penalty")) p.presence_penalty = *v;
  if (auto v = f.Number("frequency_penalty")) p.frequency_penalty = *v;
  if (auto v = f.Integer("seed")) p.seed = static_cast<uint64_t>(*v);
  if (const Json* stop = f.Get("stop")) {
    p.stop.clear();
    if (stop->is_string()) {
      p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const Json& s : *stop) {
        if (!s.is_string()) throw RequestError("stop must be a string or an array of strings", "stop");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      f.Wrong("stop", "a string or an array of strings");
    }
  }
  if (const Json* bias = f.Object("logit_bias")) {
    p.logit_bias.clear();
    for (const auto& [key, value] : bias->items()) {
      int32_t id = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || end != key.data() + key.size()) {
        throw RequestError("logit_bias keys must be token ids (got \"" + key + "\")", "logit_bias");
      }
      if (!value.is_number()) throw RequestError("logit_bias values must be numbers", "logit_bias");
      p.logit_bias.emplace_back(id, value.get<float>());
    }
  }
  if (auto n = f.Integer("n"); n && *n != 1) {
    throw RequestError("n must be 1 (one choice per request; send the request again with other seeds for more)",
                       "n");
  }
  return p;
}

// max_completion_tokens (OpenAI's current name) or max_tokens; unset: the
// command's default, cut to what the context leaves after the prompt.
int64_t MaxTokens(const Fields& f, int64_t prompt_tokens, const RequestDefaults& defaults) {
  const char* key = f.Get("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const std::optional<int64_t> asked = f.Integer(key);
  if (asked && *asked < 0) throw RequestError(std::string(key) + " must be >= 0", key);
  const int64_t room = defaults.context_tokens - prompt_tokens;
  if (room <= 0) {
    throw RequestError("the prompt has " + std::to_string(prompt_tokens) + " tokens; the context holds " +
                           std::to_string(defaults.context_tokens),
                       f.Get("messages") ? "messages" : "prompt");
  }
  if (!asked) return std::min(defaults.sampling.max_tokens, room);
  if (*asked > room) {
    throw RequestError("the prompt (" + std::to_string(prompt_tokens) + " tokens) plus " + key + " (" +
                           std::to_string(*asked) + ") exceeds the context of " +
                           std::to_string(defaults.context_tokens) + " tokens",
                       key);
  }
  return *asked;
}

// contracts.md §4: thinking.type, reasoning_effort and vLLM's
// chat_template_kwargs over the command's default mode. Disabled thinking
// wins; an effort alone turns thinking on.
ReasoningMode Mode(const Fields& f, ReasoningMode fallback) {
  std::optional<bool> thinking;
  std::optional<std::string> effort = f.String("reasoning_effort");
  std::string effort_field = "reasoning_effort";
  if (const Json* kwargs = f.Object("chat_template_kwargs")) {
    const Fields k(*kwargs, "chat_template_kwargs");
    thinking = k.Bool("thinking");
    if (!thinking) thinking = k.Bool("enable_thinking");
    if (!effort && (effort = k.String("reasoning_effort"))) effort_field = "chat_template_kwargs.reasoning_effort";
  }
  if (const Json* t = f.Object("thinking")) {
    const std::optional<std::string> type = Fields(*t, "thinking").String("type");
    if (type == "enabled") {
      thinking = true;
    } else if (type == "disabled") {
      thinking = false;
    } else {
      throw RequestError("thinking.type must be \"enabled\" or \"disabled\"", "thinking.type");
    }
  }
  if (thinking == false) return ReasoningMode::kChat;
  if (effort) {
    // The official encoding has two levels: think and think-max.
    static constexpr std::array<std::string_view, 5> kHigh = {"minimal", "low", "medium", "high", "xhigh"};
    static constexpr std::array<std::string_view, 2> kMax = {"max", "ultra"};
    if (std::find(kMax.begin(), kMax.end(), *effort) != kMax.end()) return ReasoningMode::kThinkMax;
    if (std::find(kHigh.begin(), kHigh.end(), *effort) == kHigh.end()) {
      throw RequestError(effort_field + " must be one of minimal, low, medium, high, xhigh, max, ultra (got \"" +
                             *effort + "\")",
                         effort_field);
    }
    return ReasoningMode::kThink;
  }
  if (thinking == true && fallback == ReasoningMode::kChat) return ReasoningMode::kThink;
  return fallback;
}

// OpenAI content parts ([{"type": "text", "text": ...}]) joined into the
// plain string the encoding takes.
Json NormalizedMessages(const Json& messages) {
  Json out = Json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!messages[i].is_object()) throw RequestError(where + " must be an object", "messages");
    Json message = messages[i];
    const auto content = message.find("content");
    if (content != message.end() && content->is_array()) {
      std::string text;
      for (size_t j = 0; j < content->size(); ++j) {
        const Json& part = (*content)[j];
        const std::string part_where = where + ".content[" + std::to_string(j) + "]";
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          throw RequestError(part_where + ": only {\"type\": \"text\", \"text\": ...} parts are supported",
                             "messages");
        }
        text += part["text"].get<std::string>();
      }
      *content = text;
    }
    out.push_back(std::move(message));
  }
  return out;
}

// tool_choice and the function it names (kNamed).
std::pair<ToolChoice, std::string> ParseToolChoice(const Fields& f, bool tools) {
  const Json* choice = f.Get("tool_choice");
  if (!choice || *choice == "auto") return {ToolChoice::kAuto, {}};
  if (*choice == "none") return {ToolChoice::kNone, {}};
  const auto need_tools = [&] {
    if (!tools) throw RequestError("tool_choice needs a non-empty tools list", "tool_choice");
  };
  if (*choice == "required") {
    need_tools();
    return {ToolChoice::kRequired, {}};
  }
  if (choice->is_object()) {
    const Fields c(*choice, "tool_choice");
    const Json* function = c.Object("function");
    const std::optional<std::string> name = function ? Fields(*function, "tool_choice.function").String("name") : std::nullopt;
    if (c.String("type") != "function" || !name) {
      throw RequestError("tool_choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}", "tool_choice");
    }
    need_tools();
    return {ToolChoice::kNamed, *name};
  }
  throw RequestError("tool_choice must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", ...}",
                     "tool_choice");
}

// response_format: the spec's format and schema; `rendered` gets the object
// as received for the system message (json_object and json_schema only).
OutputSpec::Format ParseResponseFormat(const Fields& f, OutputSpec& spec, const Json*& rendered) {
  rendered = nullptr;
  const Json* format = f.Object("response_format");
  if (!format) return OutputSpec::Format::kText;
  const Fields r(*format, "response_format");
  const std::optional<std::string> type = r.String("type");
  if (type == "text") return OutputSpec::Format::kText;
  rendered = format;
  if (type == "json_object") return OutputSpec::Format::kJsonObject;
  if (type != "json_schema") {
    throw RequestError("response_format.type must be \"text\", \"json_object\" or \"json_schema\"", "response_format");
  }
  const Json* wrapper = r.Object("json_schema");
  if (!wrapper) throw RequestError("response_format.json_schema is required with type json_schema", "response_format");
  const Fields w(*wrapper, "response_format.json_schema");
  const std::optional<std::string> name = w.String("name");
  if (!name || name->empty() || name->size() > 64 ||
      !std::all_of(name->begin(), name->end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; })) {
    throw RequestError("response_format.json_schema.name must be 1 to 64 letters, digits, '_' or '-'", "response_format");
  }
  w.Bool("strict");  // accepted either way: decoding always keeps to the schema
  const Json* schema = w.Get("schema");
  if (!schema) return OutputSpec::Format::kJsonObject;
  if (!schema->is_object() && !schema->is_boolean()) {
    throw RequestError("response_format.json_schema.schema must be an object", "response_format");
  }
  spec.schema = *schema;
  return OutputSpec::Format::kJsonSchema;
}

// The compiled constraint of a spec: schema errors name response_format,
// tool schema errors the tools. Under tool_choice auto with a text answer,
// a tool schema the compiler cannot take leaves the calls unconstrained
// rather than refusing a request that needs no constraint to run.
std::shared_ptr<const OutputConstraint> Constraint(const OutputSpec& spec, ConstraintCompiler* compiler) {
  const bool optional = !spec.Constrains();
  if (spec.tools == OutputSpec::Tools::kNone && optional) return nullptr;
  if (!compiler) {
    if (optional) return nullptr;
    throw RequestError("structured output is not available here", spec.format != OutputSpec::Format::kText ? "response_format" : "tool_choice");
  }
  try {
    return compiler->Compile(spec);
  } catch (const Error& e) {
    if (optional) return nullptr;
    const std::string message = e.what();
    throw RequestError(message, message.starts_with("tools") ? "tools" : message.starts_with("tool_choice") ? "tool_choice" : "response_format");
  }
}

void RefuseUnsupported(const Fields& f) {
  if (f.Bool("echo") == true) throw RequestError("echo is not supported", "echo");
  if (auto best_of = f.Integer("best_of"); best_of && *best_of != 1) {
    throw RequestError("best_of must be 1", "best_of");
  }
  if (auto suffix = f.String("suffix"); suffix && !suffix->empty()) {
    throw RequestError("suffix is not supported (the model has no fill-in-the-middle format)", "suffix");
  }
}

std::vector<int32_t> CompletionPrompt(const Fields& f, const Tokenizer& tokenizer) {
  const Json* prompt = f.Get("prompt");
  if (!prompt) throw RequestError("prompt is required", "prompt");
  // One prompt per request: a one-element array is taken as its element.
  const Json& p = prompt->is_array() && prompt->size() == 1 && !(*prompt)[0].is_number() ? (*prompt)[0] : *prompt;
  if (p.is_string()) return tokenizer.Encode(p.get<std::string>());
  if (p.is_array() && !p.empty() && std::all_of(p.begin(), p.end(), [](const Json& t) { return t.is_number_integer(); })) {
    std::vector<int32_t> ids;
    for (const Json& t : p) {
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id >= tokenizer.VocabSize()) {
        throw RequestError("prompt token " + std::to_string(id) + " is outside the vocabulary", "prompt");
      }
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  }
  throw RequestError("prompt must be a string or an array of token ids (one prompt per request)", "prompt");
}

}  // namespace

std::optional<Endpoint> EndpointForUrl(std::string_view url) {
  if (url == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (url == "/v1/completions") return Endpoint::kCompletions;
  return std::nullopt;
}

ApiRequest ParseRequest(Endpoint endpoint, const Json& body, const RequestDefaults& defaults,
                        const Tokenizer& tokenizer) {
  if (!body.is_object()) throw RequestError("the request body must be a JSON object");
  // Everything below copies or writes parts of the body recursively (python_json.h).
  if (JsonDepth(body) > kMaxJsonDepth) {
    throw RequestError("the request body nests JSON more than " + std::to_string(kMaxJsonDepth) + " levels deep");
  }
  const Fields f(body, "");
  RefuseUnsupported(f);
  ApiRequest r;
  r.endpoint = endpoint;
  GenerationRequest& g = r.generation;
  OutputSpec spec;
  g.sampling = Sampling(f, defaults.sampling);
  r.stream = f.Bool("stream").value_or(false);
  if (const Json* options = f.Object("stream_options")) {
    r.stream_usage = Fields(*options, "stream_options").Bool("include_usage").value_or(false);
  }
  if (endpoint == Endpoint::kChatCompletions) {
    r.logprobs = f.Bool("logprobs").value_or(false);
    if (auto top = f.Integer("top_logprobs")) {
      if (!r.logprobs) throw RequestError("top_logprobs needs logprobs: true", "top_logprobs");
      if (*top < 0 || *top > kMaxTopLogprobs) {
        throw RequestError("top_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "]", "top_logprobs");
      }
      g.sampling.top_logprobs = static_cast<int>(*top);
    } else if (r.logprobs) {
      g.sampling.top_logprobs = 0;
    }
    const Json* messages = f.Array("messages");
    if (!messages || messages->empty()) throw RequestError("messages must be a non-empty array", "messages");
    Json conversation = NormalizedMessages(*messages);
    const Json* tools = f.Array("tools");
    r.tools = tools && !tools->empty();
    const Json* rendered_format = nullptr;
    spec.format = ParseResponseFormat(f, spec, rendered_format);
    AttachToSystem(conversation, r.tools ? tools : nullptr, rendered_format);
    std::string function;
    std::tie(r.tool_choice, function) = ParseToolChoice(f, r.tools);
    if (r.tool_choice == ToolChoice::kNone) {
      if (std::optional<int32_t> dsml = tokenizer.TokenId(chat_tokens::kDsml)) g.sampling.banned_tokens.push_back(*dsml);
    } else if (r.tools) {
      spec.tool_list = *tools;
      spec.function = function;
      spec.parallel_calls = f.Bool("parallel_tool_calls").value_or(true);
      spec.tools = r.tool_choice == ToolChoice::kAuto       ? OutputSpec::Tools::kAuto
                   : r.tool_choice == ToolChoice::kRequired ? OutputSpec::Tools::kRequired
                                                            : OutputSpec::Tools::kNamed;
    }
    r.mode = Mode(f, defaults.mode);
    try {
      g.prompt = tokenizer.Encode(RenderChat(conversation, r.mode));
    } catch (const RequestError&) {
      throw;
    } catch (const Error& e) {
      throw RequestError(e.what(), "messages");
    }
    g.reasoning = IsThinking(r.mode);
  } else {
    if (auto logprobs = f.Integer("logprobs")) {
      if (*logprobs < 0 || *logprobs > 5) throw RequestError("logprobs must be in [0, 5]", "logprobs");
      r.logprobs = true;
      g.sampling.top_logprobs = static_cast<int>(*logprobs);
    }
    r.mode = ReasoningMode::kChat;
    try {
      g.prompt = CompletionPrompt(f, tokenizer);
    } catch (const RequestError&) {
      throw;
    } catch (const Error& e) {
      throw RequestError(e.what(), "prompt");
    }
    if (g.prompt.empty()) throw RequestError("prompt is empty", "prompt");
  }
  g.sampling.max_tokens = MaxTokens(f, static_cast<int64_t>(g.prompt.size()), defaults);
  g.reasoning_budget = defaults.reasoning_budget;
  if (auto budget = f.Integer("reasoning_budget")) {
    if (*budget < 0) throw RequestError("reasoning_budget must be >= 0", "reasoning_budget");
    g.reasoning_budget = *budget;
  } else if (g.reasoning && spec.Constrains() && g.reasoning_budget < 0) {
    g.reasoning_budget = g.sampling.max_tokens / 2;  // the answer always has room
  }
  g.constraint = Constraint(spec, defaults.constraints);
  try {
    ValidateSampling(g.sampling, tokenizer.VocabSize());
  } catch (const Error& e) {
    const std::string message = e.what();
    throw RequestError(message, message.substr(0, message.find(' ')));
  }
  return r;
}

}  // namespace dsv4::api
