// JSON Schema `pattern` (the ECMA-262 subset of docs/structured-output.md)
// as a grammar expression over the output bytes of the string's body.
#pragma once

#include <string_view>

#include "engine/structured/grammar_expr.h"

namespace dsv4 {

// The expression matching the encoded body (between the quotes) of exactly
// the strings the pattern matches, searched as JSON Schema does: unanchored
// unless the pattern starts with ^ / ends with $. kJson encodes each
// character one way only: '"' as \", '\\' as \\, U+0008/09/0A/0C/0D as
// \b \t \n \f \r, other controls below U+0020 as \u00XX (lowercase hex),
// everything else raw UTF-8. kRaw: raw UTF-8.
// Throws dsv4::Error naming the construct and its offset in the pattern for
// anything outside the subset (backreferences, lookaround, ...).
Expr PatternExpr(std::string_view pattern, StringForm form);

}  // namespace dsv4
