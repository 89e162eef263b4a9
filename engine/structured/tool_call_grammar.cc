#include "engine/structured/tool_call_grammar.h"

#include <algorithm>
#include <set>
#include <vector>

#include "engine/structured/json_schema.h"
#include "engine/text/chat_format.h"
#include "loader/error.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;

bool StringTyped(const Json& schema) {
  return schema.is_object() && schema.contains("type") && schema["type"].is_string() && schema["type"] == "string";
}

// One function's invoke: its name, then its parameters joined by "\n".
Expr Invoke(Grammar& grammar, const Json& function, const std::string& where) {
  const std::string name = function["name"].get<std::string>();
  const Json empty = Json::object();
  const Json& parameters = function.contains("parameters") ? function["parameters"] : empty;
  if (!parameters.is_object()) throw Error(where + ".parameters: must be an object");
  JsonSchemaCompiler schemas(grammar, parameters, where + ".parameters");
  std::set<std::string> required;
  if (parameters.contains("required") && parameters["required"].is_array()) {
    for (const Json& r : parameters["required"]) {
      if (r.is_string()) required.insert(r.get<std::string>());
    }
  }
  std::vector<Expr> params;
  std::vector<bool> needed;
  if (parameters.contains("properties")) {
    if (!parameters["properties"].is_object()) throw Error(where + ".parameters.properties: must be an object");
    for (const auto& [key, schema] : parameters["properties"].items()) {
      const std::string path = "/properties/" + key;
      const bool raw = StringTyped(schema);
      const Expr value = raw ? schemas.RawString(schema, path) : schemas.Value(schema, path);
      params.push_back(Expr::Seq({DsmlText(std::string(dsml::kParameterOpen) + " name=\"" + key + "\" string=\"" +
                                           (raw ? "true" : "false") + "\">"),
                                  value, DsmlText(dsml::kParameterClose)}));
      needed.push_back(required.count(key) > 0);
    }
  }
  const bool any_needed = std::find(needed.begin(), needed.end(), true) != needed.end();
  Expr listed = OrderedMembers(params, needed, Expr::Byte('\n'));
  if (!any_needed) listed = Expr::Alt({listed, Expr::Empty()});
  return Expr::Seq({DsmlText(std::string(dsml::kInvokeOpen) + " name=\"" + name + "\">\n"), listed,
                    DsmlText("\n" + std::string(dsml::kInvokeClose))});
}

}  // namespace

Expr DsmlText(std::string_view text) {
  std::vector<Expr> parts;
  const std::string_view token = chat_tokens::kDsml;
  size_t at = 0;
  for (size_t hit; (hit = text.find(token, at)) != std::string_view::npos; at = hit + token.size()) {
    parts.push_back(Expr::Literal(text.substr(at, hit - at)));
    parts.push_back(Expr::Symbols(kDsmlSymbol, kDsmlSymbol));
  }
  parts.push_back(Expr::Literal(text.substr(at)));
  return Expr::Seq(std::move(parts));
}

Expr ToolCallsExpr(Grammar& grammar, const Json& tools, const std::optional<std::string>& named, bool parallel) {
  if (!tools.is_array() || tools.empty()) throw Error("tools: a tool call needs at least one tool");
  std::vector<Expr> invokes;
  bool found = false;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = "tools[" + std::to_string(i) + "].function";
    const Json& tool = tools[i];
    if (!tool.is_object() || !tool.contains("function") || !tool["function"].is_object() ||
        !tool["function"].contains("name") || !tool["function"]["name"].is_string()) {
      throw Error(where + ": must be an object with a string name");
    }
    const std::string name = tool["function"]["name"].get<std::string>();
    if (named && name != *named) continue;
    found = true;
    const int rule = grammar.AddRule();
    grammar.Define(rule, Invoke(grammar, tool["function"], where));
    invokes.push_back(Expr::Rule(rule));
  }
  if (named && !found) throw Error("tool_choice: function \"" + *named + "\" is not among the tools");
  const Expr invoke = Expr::Alt(std::move(invokes));
  const Expr calls = named || !parallel ? invoke : Expr::Seq({invoke, Expr::Repeat(Expr::Seq({Expr::Byte('\n'), invoke}), 0, -1)});
  return Expr::Seq({DsmlText("\n\n" + std::string(dsml::kToolCallsOpen) + "\n"), calls,
                    DsmlText("\n" + std::string(dsml::kToolCallsClose))});
}

}  // namespace dsv4
