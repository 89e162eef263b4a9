// A JSON Schema (2020-12) validator for the subset constrained decoding
// supports, so tests can check that every constrained output really conforms.
// Deliberately strict about the schema: a keyword outside the subset throws
// instead of being skipped, so a test never passes by ignoring a constraint.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace dsv4::testing {

// nullopt when `instance` conforms to `schema`, else a message naming the
// JSON pointer of the first violation, e.g. `at "/items/0": 7 > maximum 5`.
//
// Keywords: type (a name or a list; "integer" is any number without a
// fractional part, 1.0 included), properties, required, additionalProperties,
// enum, const (JSON equality, numbers by value: 1 == 1.0), items (a schema),
// prefixItems, minItems, maxItems, minLength, maxLength (Unicode code points),
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, pattern, format
// (date, time, date-time, uuid, email, ipv4; asserted), anyOf, oneOf, allOf,
// $ref ("#", "#/$defs/NAME", "#/definitions/NAME", recursion allowed), $defs,
// definitions, and the boolean schemas. title, description, default,
// examples, $schema, $id and $comment are ignored.
//
// `pattern` is an ECMAScript std::regex searched (not anchored) over the
// string's UTF-8 bytes: exact for ASCII patterns, approximate for patterns
// whose classes, `.` or quantifiers apply to non-ASCII characters (they see
// bytes, not code points).
//
// The whole schema is checked before the instance, even parts the instance
// never reaches. Throws std::invalid_argument naming the keyword and its
// schema location for an unsupported keyword or format, a malformed keyword
// value, a pattern std::regex rejects, or a $ref that does not resolve; and
// for $ref chains that loop without descending into the instance.
std::optional<std::string> SchemaViolation(const nlohmann::json& schema, const nlohmann::json& instance);

}  // namespace dsv4::testing
