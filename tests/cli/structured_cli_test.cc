// Structured output end to end on the random model with the real
// tokenizer: whatever the random weights say, `run --json-schema` and
// `run --json` print valid JSON, a bounded schema ends with "stop" within
// max_tokens (in thinking mode too: the reasoning budget leaves the answer
// room), `batch` answers response_format and forced tool calls, and a schema
// the compiler cannot take is one clear error line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/structured/output_constraint.h"
#include "tests/support/json_schema_validator.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using testing::RunCli;
using testing::ShellQuote;
using testing::TempDir;

const char* kSchema = R"({"type":"object","properties":{
    "title":{"type":"string","maxLength":16},
    "year":{"type":"integer","minimum":1900,"maximum":2100},
    "rating":{"type":"number","minimum":0,"maximum":10},
    "genres":{"type":"array","items":{"enum":["drama","comedy","sci-fi"]},"minItems":1,"maxItems":3},
    "sequel":{"type":["boolean","null"]}},
  "required":["title","year","genres"],"additionalProperties":false})";

int64_t Bound(const Json& schema) {
  static ConstraintCompiler compiler(testing::RealTokenizer(), 129280);
  OutputSpec spec;
  spec.format = OutputSpec::Format::kJsonSchema;
  spec.schema = schema;
  return *compiler.Compile(spec)->max_tokens();
}

std::string Answer(const std::string& out) {
  const std::string marker = "--- answer ---\n";
  const size_t at = out.find(marker);
  return at == std::string::npos ? out : out.substr(at + marker.size());
}

TEST(StructuredCli, RunJsonSchemaAlwaysValidAndStops) {
  TempDir dir;
  const std::string schema_file = dir.File("schema.json");
  testing::WriteFile(schema_file, kSchema);
  const Json schema = Json::parse(kSchema);
  const int64_t bound = Bound(schema);
  // Sanitized builds run think mode only (its answer is constrained as chat mode's is), one seed.
  const std::vector<const char*> modes = testing::kSanitized ? std::vector<const char*>{"think"}
                                                             : std::vector<const char*>{"chat", "think"};
  for (const char* mode : modes) {
    for (int seed = 0; seed < testing::SizeUnlessSanitized(3, 1); ++seed) {
      // In think mode the reasoning gets half of max_tokens.
      const int64_t max_tokens = std::string(mode) == "think" ? 2 * bound : bound;
      const testing::CommandResult r =
          RunCli("run -m " + ShellQuote(testing::TextModelDir()) + " -p 'A film, as JSON' --mode " + mode +
                 " --json-schema " + ShellQuote(schema_file) + " --temperature 1 --seed " + std::to_string(seed) +
                 " --max-tokens " + std::to_string(max_tokens));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_NE(r.err.find("finish stop"), std::string::npos) << r.err;
      nlohmann::json value;
      ASSERT_NO_THROW(value = nlohmann::json::parse(Answer(r.out))) << r.out;
      const auto violation = testing::SchemaViolation(nlohmann::json::parse(kSchema), value);
      EXPECT_FALSE(violation) << *violation << "\n" << r.out;
    }
  }
}

TEST(StructuredCli, RunJsonGivesAnObjectWhenItStops) {
  int stopped = 0;
  for (int seed = 0; seed < 4; ++seed) {
    const testing::CommandResult r = RunCli("run -m " + ShellQuote(testing::TextModelDir()) +
                                            " -p 'Say it as JSON' --json --temperature 1 --max-tokens 120 --seed " +
                                            std::to_string(seed));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (r.err.find("finish stop") == std::string::npos) continue;
    ++stopped;
    EXPECT_TRUE(nlohmann::json::parse(r.out).is_object()) << r.out;
  }
  EXPECT_GT(stopped, 0);
}

TEST(StructuredCli, UnsupportedSchemaIsOneClearLine) {
  TempDir dir;
  const std::string schema_file = dir.File("schema.json");
  testing::WriteFile(schema_file, R"({"type":"object","properties":{"a":{"type":"string","not":{}}}})");
  const testing::CommandResult r = RunCli("run -m " + ShellQuote(testing::TextModelDir()) + " -p hi --json-schema " +
                                          ShellQuote(schema_file));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/properties/a/not: keyword \"not\" is not supported"), std::string::npos) << r.err;
  testing::WriteFile(schema_file, "{not json");
  const testing::CommandResult bad = RunCli("run -m " + ShellQuote(testing::TextModelDir()) + " -p hi --json-schema " +
                                            ShellQuote(schema_file));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is not valid JSON"), std::string::npos) << bad.err;
  // 100,000 levels would overflow the compiler's stack: refused first.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "{\"items\":";
  deep += "{}" + std::string(100000, '}');
  testing::WriteFile(schema_file, deep);
  const testing::CommandResult nested = RunCli("run -m " + ShellQuote(testing::TextModelDir()) + " -p hi --json-schema " +
                                               ShellQuote(schema_file));
  EXPECT_EQ(nested.exit_code, 1);
  EXPECT_NE(nested.err.find("nests JSON more than 512 levels deep"), std::string::npos) << nested.err;
}

TEST(StructuredCli, BatchAnswersSchemasAndForcedToolCalls) {
  TempDir dir;
  const Json schema = Json::parse(kSchema);
  const Json tools = Json::parse(R"([{"type":"function","function":{"name":"lookup","parameters":{"type":"object",
      "properties":{"query":{"type":"string","maxLength":12},"limit":{"type":"integer","minimum":1,"maximum":5}},
      "required":["query","limit"]}}}])");
  // Schemas at even ids, tool calls at odd ones (required, then named);
  // sanitized builds answer one of each.
  const int records = testing::SizeUnlessSanitized(4, 2);
  std::string input;
  for (int i = 0; i < records; ++i) {
    Json body = {{"messages", {{{"role", "user"}, {"content", "Item " + std::to_string(i)}}}},
                 {"max_tokens", 2 * Bound(schema)}};
    if (i % 2 == 0) {
      body["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "film"}, {"schema", schema}}}};
    } else {
      body["tools"] = tools;
      body["parallel_tool_calls"] = false;
      body["tool_choice"] = i == 1 ? Json("required") : Json{{"type", "function"}, {"function", {{"name", "lookup"}}}};
      body["max_tokens"] = 400;
    }
    input += Json{{"custom_id", "r" + std::to_string(i)}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
                 .dump() +
             "\n";
  }
  testing::WriteFile(dir.File("in.jsonl"), input);
  const testing::CommandResult r = RunCli("batch -m " + ShellQuote(testing::TextModelDir()) + " --input " +
                                          ShellQuote(dir.File("in.jsonl")) + " --output " + ShellQuote(dir.File("out.jsonl")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(testing::ReadFile(dir.File("out.jsonl")));
  int answered = 0;
  for (std::string line; std::getline(lines, line);) {
    const Json record = Json::parse(line);
    const Json& choice = record["response"]["body"]["choices"][0];
    const int i = std::stoi(record["custom_id"].get<std::string>().substr(1));
    ++answered;
    if (i % 2 == 0) {
      EXPECT_EQ(choice["finish_reason"], "stop") << line;
      const auto value = nlohmann::json::parse(choice["message"]["content"].get<std::string>());
      EXPECT_FALSE(testing::SchemaViolation(nlohmann::json::parse(kSchema), value)) << line;
    } else {
      EXPECT_EQ(choice["finish_reason"], "tool_calls") << line;
      const Json& calls = choice["message"]["tool_calls"];
      ASSERT_FALSE(calls.empty()) << line;
      for (const Json& call : calls) {
        EXPECT_EQ(call["function"]["name"], "lookup");
        const Json arguments = Json::parse(call["function"]["arguments"].get<std::string>());
        EXPECT_TRUE(arguments["query"].is_string() && arguments["limit"].is_number_integer()) << line;
      }
      EXPECT_EQ(calls.size(), 1u);  // named, or parallel_tool_calls false
    }
  }
  EXPECT_EQ(answered, records);
}

}  // namespace
}  // namespace dsv4
