// JSON Schema (the subset of docs/structured-output.md) as grammar
// expressions. Whitespace between JSON tokens is at most one newline and 16
// spaces; numbers have at most 20 significant digits (whole part and
// fraction together) and a 2-digit exponent (within a double's range, so
// every parser reads them); so a schema whose strings and arrays are
// bounded bounds the whole answer. Properties come in the schema's order;
// optional ones may be left out; an object without additionalProperties
// gets only its listed properties (valid either way).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/structured/grammar.h"

namespace dsv4 {

// Members in order joined by `separator`, each optional one skippable, at
// least one present (Never when there are none): JSON object properties
// and DSML invoke parameters alike.
Expr OrderedMembers(const std::vector<Expr>& members, const std::vector<bool>& required, const Expr& separator);

class JsonSchemaCompiler {
 public:
  using Json = nlohmann::ordered_json;
  // root: the document `$ref`s resolve in; where: how errors name it
  // ("response_format.json_schema.schema"). Both must outlive the compiler.
  JsonSchemaCompiler(Grammar& grammar, const Json& root, std::string where);

  // A JSON value valid against `schema` (at JSON pointer `path` of the
  // root, for errors). Throws dsv4::Error naming the keyword and its path
  // for anything unsupported or unsatisfiable.
  Expr Value(const Json& schema, const std::string& path);
  // The body of a DSML string="true" parameter of a string schema: its
  // characters raw.
  Expr RawString(const Json& schema, const std::string& path);
  // Any JSON value / any JSON object.
  Expr AnyValue();
  Expr AnyObject();
  // Between two JSON tokens.
  static Expr Whitespace();

 private:
  [[noreturn]] void Fail(const std::string& path, const std::string& what) const;
  // The constraining keywords of a schema object; unsupported ones fail.
  std::vector<std::string> Keywords(const Json& schema, const std::string& path) const;
  Expr Typed(const Json& schema, const std::string& type, const std::string& path);
  Expr Object(const Json& schema, const std::string& path);
  Expr Array(const Json& schema, const std::string& path);
  Expr String(const Json& schema, const std::string& path, StringForm form);
  Expr Integer(const Json& schema, const std::string& path);
  Expr Number(const Json& schema, const std::string& path);
  Expr Ref(const std::string& ref, const std::string& path);
  // A value as a rule of its own, so that repeating it costs a call.
  Expr Shared(const Json& schema, const std::string& path);

  Grammar& grammar_;
  const Json& root_;
  std::string where_;
  std::map<std::string, int> refs_;  // $ref -> its rule
  int any_value_ = -1, any_object_ = -1;
};

}  // namespace dsv4
