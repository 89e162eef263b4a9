// The DSML tool-call block of the official encoding (spec §7) as a grammar:
//   "\n\n<｜DSML｜tool_calls>\n" INVOKE ("\n" INVOKE)* "\n</｜DSML｜tool_calls>"
// where each INVOKE names one of the tools and writes its parameters in the
// order of the function's `parameters.properties`, every required one, a
// string-typed one raw (string="true", its string keywords applied) and any
// other as JSON (string="false") valid against its schema.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/structured/grammar.h"

namespace dsv4 {

// tools: the request's OpenAI-format `tools`. named: exactly one invoke of
// that function (it must be among the tools); otherwise one or more invokes
// of any (exactly one without `parallel`). Throws dsv4::Error naming the tool and keyword for a parameters
// schema the compiler does not support.
Expr ToolCallsExpr(Grammar& grammar, const nlohmann::ordered_json& tools, const std::optional<std::string>& named,
                   bool parallel);

// Bytes with each "｜DSML｜" as the DSML symbol.
Expr DsmlText(std::string_view text);

}  // namespace dsv4
