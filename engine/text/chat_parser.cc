#include "engine/text/chat_parser.h"

#include <algorithm>

#include "engine/text/python_json.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
constexpr size_t kNone = std::string_view::npos;

// Shortened, single-line quote of model output for a warning.
std::string Quote(std::string_view text) {
  std::string out = Json(std::string(text.substr(0, 40))).dump(-1, ' ', false, Json::error_handler_t::replace);
  return text.size() > 40 ? out + "..." : out;
}

class CompletionParser {
 public:
  CompletionParser(std::string_view text, ParsedCompletion& result) : text_(text), result_(result) {}

  void Parse(ReasoningMode mode) {
    using namespace chat_tokens;
    if (IsThinking(mode)) {
      const size_t think_end = Find(kThinkEnd, 0);
      const size_t stop = std::min(ToolBlockStart(0), Find(kEos, 0));
      if (think_end < stop) {
        result_.reasoning_content = text_.substr(0, think_end);
        pos_ = think_end + kThinkEnd.size();
      } else {
        Warn("the reasoning is not closed by </think>; everything before " +
             std::string(stop == text_.size() ? "the end" : "the answer's end") + " is taken as reasoning");
        result_.reasoning_content = text_.substr(0, stop);
        pos_ = stop;
      }
    }
    const size_t tools = Find(dsml::kToolCallsOpen, pos_);
    const size_t eos = Find(kEos, pos_);
    if (tools < eos) {
      const size_t start = ToolBlockStart(pos_);
      if (start == tools) Warn("the tool-call block does not follow a blank line");
      result_.content = text_.substr(pos_, start - pos_);
      pos_ = tools + dsml::kToolCallsOpen.size();
      ParseToolCalls();
      const size_t after = Find(kEos, pos_);
      if (after == text_.size()) {
        Warn("no end-of-sentence token after the tool calls (output cut off?)");
      } else {
        if (after > pos_) Warn("text between the tool calls and the end was ignored: " + Quote(text_.substr(pos_, after - pos_)));
        End(after);
      }
    } else if (eos < text_.size()) {
      result_.content = text_.substr(pos_, eos - pos_);
      End(eos);
    } else {
      result_.content = text_.substr(pos_);
      Warn("no end-of-sentence token (output cut off?)");
    }
    for (const std::string_view token : {kBos, kEos, kThinkStart, kThinkEnd, kDsml}) {
      if (result_.reasoning_content.find(token) != std::string::npos) Warn("the reasoning contains " + std::string(token));
      if (result_.content.find(token) != std::string::npos) Warn("the answer contains " + std::string(token));
    }
  }

 private:
  struct Parameter {
    std::string name, value;
    bool is_string;
  };

  size_t Find(std::string_view what, size_t from) const {
    const size_t at = text_.find(what, from);
    return at == kNone ? text_.size() : at;
  }
  bool StartsWith(std::string_view what) const { return text_.substr(pos_).starts_with(what); }
  bool Consume(std::string_view what) {
    if (!StartsWith(what)) return false;
    pos_ += what.size();
    return true;
  }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r')) ++pos_;
  }
  void Warn(std::string message) { result_.warnings.push_back(std::move(message)); }

  // Where the content before a tool-call block ends: at the "\n\n" that
  // precedes "<｜DSML｜tool_calls>" (or at the tag itself, without one).
  size_t ToolBlockStart(size_t from) const {
    const size_t tag = Find(dsml::kToolCallsOpen, from);
    if (tag == text_.size()) return tag;
    return tag >= from + 2 && text_.substr(tag - 2, 2) == "\n\n" ? tag - 2 : tag;
  }

  void End(size_t eos) {
    result_.ended = true;
    pos_ = eos + chat_tokens::kEos.size();
    if (pos_ < text_.size()) Warn("text after the end-of-sentence token was ignored: " + Quote(text_.substr(pos_)));
  }

  // ` KEY="VALUE"` at the cursor.
  bool Attribute(std::string_view key, std::string& value) {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
    if (!Consume(key) || !Consume("=\"")) return false;
    const size_t quote = text_.find('"', pos_);
    if (quote == kNone) return false;
    value = text_.substr(pos_, quote - pos_);
    pos_ = quote + 1;
    return true;
  }

  // After "<｜DSML｜tool_calls>": invokes until "</｜DSML｜tool_calls>".
  void ParseToolCalls() {
    while (true) {
      SkipSpace();
      if (Consume(dsml::kToolCallsClose)) return;
      if (StartsWith(dsml::kInvokeOpen)) {
        if (!ParseInvoke()) return;
        continue;
      }
      const size_t next = std::min({Find(dsml::kInvokeOpen, pos_), Find(dsml::kToolCallsClose, pos_),
                                    Find(chat_tokens::kEos, pos_)});
      if (next > pos_) Warn("unexpected text in the tool-call block was ignored: " + Quote(text_.substr(pos_, next - pos_)));
      pos_ = next;
      if (!StartsWith(dsml::kInvokeOpen) && !StartsWith(dsml::kToolCallsClose)) {
        Warn("the tool-call block is not closed (output cut off?)");
        return;
      }
    }
  }

  // One invoke; false when the output ends inside it (the call is dropped).
  bool ParseInvoke() {
    pos_ += dsml::kInvokeOpen.size();
    std::string name;
    if (!Attribute("name", name) || !Consume(">")) {
      Warn("malformed invoke tag " + Quote(text_.substr(pos_)) + "; that tool call is left out");
      return SkipPast(dsml::kInvokeClose);
    }
    std::vector<Parameter> parameters;
    while (true) {
      SkipSpace();
      if (Consume(dsml::kInvokeClose)) break;
      if (StartsWith(dsml::kParameterOpen)) {
        pos_ += dsml::kParameterOpen.size();
        Parameter p;
        std::string is_string;
        if (!Attribute("name", p.name) || !Attribute("string", is_string) || !Consume(">")) {
          Warn("malformed parameter tag in tool call \"" + name + "\"; that parameter is left out");
          if (!SkipPast(dsml::kParameterClose)) return CutOff(name);
          continue;
        }
        const size_t close = text_.find(dsml::kParameterClose, pos_);
        if (close == kNone) return CutOff(name);
        p.value = text_.substr(pos_, close - pos_);
        pos_ = close + dsml::kParameterClose.size();
        p.is_string = is_string != "false";
        if (is_string != "true" && is_string != "false") {
          Warn("parameter \"" + p.name + "\" of \"" + name + "\" has string=\"" + is_string + "\"; read as a string");
        }
        // nlohmann's parser ends its input at a NUL byte, so "3\0x" would pass.
        if (!p.is_string && (p.value.find('\0') != std::string::npos || !Json::accept(p.value))) {
          Warn("parameter \"" + p.name + "\" of \"" + name + "\" is marked string=\"false\" but is not JSON: " +
               Quote(p.value) + "; kept as a string");
          p.is_string = true;
        }
        const bool duplicate = std::any_of(parameters.begin(), parameters.end(),
                                           [&](const Parameter& q) { return q.name == p.name; });
        if (duplicate) {
          Warn("parameter \"" + p.name + "\" of \"" + name + "\" appears twice; the first is kept");
        } else {
          parameters.push_back(std::move(p));
        }
        continue;
      }
      const size_t next = std::min(Find(dsml::kParameterOpen, pos_), Find(dsml::kInvokeClose, pos_));
      if (next == text_.size()) return CutOff(name);
      Warn("unexpected text in tool call \"" + name + "\" was ignored: " + Quote(text_.substr(pos_, next - pos_)));
      pos_ = next;
    }
    // decode_dsml_to_arguments: a JSON object in parameter order; string
    // values are JSON-quoted, others copied as written.
    std::string arguments = "{";
    for (size_t k = 0; k < parameters.size(); ++k) {
      if (k > 0) arguments += ", ";
      AppendPythonJson(parameters[k].name, arguments);
      arguments += ": ";
      if (parameters[k].is_string) {
        AppendPythonJson(parameters[k].value, arguments);
      } else {
        arguments += parameters[k].value;
      }
    }
    arguments += "}";
    result_.tool_calls.push_back({{"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}});
    return true;
  }

  bool CutOff(const std::string& name) {
    Warn("tool call \"" + name + "\" is not closed (output cut off?); it is left out");
    pos_ = text_.size();
    return false;
  }

  bool SkipPast(std::string_view tag) {
    const size_t at = text_.find(tag, pos_);
    pos_ = at == kNone ? text_.size() : at + tag.size();
    return at != kNone;
  }

  std::string_view text_;
  ParsedCompletion& result_;
  size_t pos_ = 0;
};

}  // namespace

Json ParsedCompletion::ToMessage() const {
  return {{"role", "assistant"},
          {"content", content},
          {"reasoning_content", reasoning_content},
          {"tool_calls", tool_calls}};
}

ParsedCompletion ParseCompletion(std::string_view completion, ReasoningMode mode) {
  ParsedCompletion result;
  CompletionParser(completion, result).Parse(mode);
  return result;
}

}  // namespace dsv4
