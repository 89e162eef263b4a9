// Random JSON Schemas from the subset constrained decoding supports (see
// json_schema_validator.h), for tests that constrain a model to each schema
// and validate what comes out. Every schema is satisfiable: each is drawn
// together with an instance that conforms to it.
#pragma once

#include <nlohmann/json.hpp>
#include <random>

namespace dsv4::testing {

struct RandomSchemaOptions {
  // Objects, arrays and anyOf/oneOf occur at levels 0 (the root) to
  // max_depth - 1; schemas at level max_depth allow scalars only (directly or
  // through enum, const, a type list or $ref). 0: the root is a scalar.
  int max_depth = 3;
  int max_properties = 6;  // per object, at most 24 (fewer in nested objects, to keep outputs short)
  // Every output has a length bound: strings have maxLength, enum, const,
  // date/uuid format or an anchored pattern with bounded repeats; arrays have
  // maxItems (at most 4); objects have additionalProperties false; $refs do
  // not recurse. Numbers are unbounded in digits. Without it, some strings,
  // arrays and objects go unbounded, and a $ref may recurse (a linked list).
  bool bounded = true;
  bool allow_patterns = true;
  bool allow_refs = true;    // $defs (or definitions) with $ref to them
  bool allow_any_of = true;  // anyOf and oneOf; alternatives have distinct types, so oneOf holds by construction
};

// Objects (required and optional properties, names needing JSON escapes),
// arrays (items or prefixItems), strings (length bounds, patterns, formats),
// integers (two-, one- or no-sided bounds, negative ranges), numbers,
// booleans, null, enum, const, type lists, anyOf/oneOf and $ref, nested up
// to options.max_depth; the root is an object three times in four. A bounded
// schema's outputs are typically well under 400 bytes.
nlohmann::json RandomSchema(std::mt19937_64& rng, const RandomSchemaOptions& options = {});

struct SchemaWithInstance {
  nlohmann::json schema;
  nlohmann::json instance;  // conforms to schema
};

// The schema RandomSchema draws from the same rng state, plus one random
// instance that conforms to it: a witness that the schema is satisfiable,
// e.g. for checking that a grammar accepts it.
SchemaWithInstance RandomSchemaWithInstance(std::mt19937_64& rng, const RandomSchemaOptions& options = {});

}  // namespace dsv4::testing
