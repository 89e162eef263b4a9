// dsv4 batch end to end on the random model with the real tokenizer: every
// line answered once (bad lines and bad requests with error records), the
// same answers at any --parallel and across shards, nothing lost or repeated
// when the process is killed at random moments and run again, a shared
// system prompt prefilled once, and outputs of another run refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/chat_format.h"
#include "engine/text/tokenizer.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::ordered_json;
using testing::DataPath;
using testing::RunCli;
using testing::ShellQuote;
using testing::TempDir;

Json Chat(const std::string& id, const std::string& user, Json extra = Json::object()) {
  Json body = {{"model", "deepseek-v4-flash"}, {"messages", {{{"role", "user"}, {"content", user}}}}};
  body.update(extra);
  return {{"custom_id", id}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}};
}

std::string Jsonl(const std::vector<Json>& lines) {
  std::string text;
  for (const Json& line : lines) text += line.dump() + "\n";
  return text;
}

// A mix of modes, endpoints, seeded and unseeded sampling, greedy.
std::vector<Json> MixedRequests(int n) {
  std::vector<Json> lines;
  for (int i = 0; i < n; ++i) {
    const std::string id = "req-" + std::to_string(i);
    Json extra = {{"max_tokens", 5 + i % 4}, {"temperature", i % 3 == 0 ? 0.0 : 0.8}};
    if (i % 4 == 1) extra["seed"] = 1000 + i;
    if (i % 5 == 2) extra["thinking"] = {{"type", "disabled"}};
    if (i % 7 == 3) {
      lines.push_back({{"custom_id", id},
                       {"method", "POST"},
                       {"url", "/v1/completions"},
                       {"body", {{"prompt", "Item " + std::to_string(i) + ":"}, {"max_tokens", 6}}}});
      continue;
    }
    lines.push_back(Chat(id, "Question number " + std::to_string(i) + "?", extra));
  }
  return lines;
}

// The output's records by custom_id (or "line N" for id-less ones); fails
// the test if a key appears twice or a line does not parse.
std::map<std::string, Json> Records(const std::string& path) {
  std::map<std::string, Json> records;
  std::istringstream in(testing::ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    const Json record = Json::parse(line);
    const std::string key = record["custom_id"].is_string() ? record["custom_id"].get<std::string>()
                                                            : "line " + record["error"]["line"].dump();
    EXPECT_FALSE(records.count(key)) << key << " is written twice";
    records[key] = record;
  }
  return records;
}

// What must be equal across --parallel, shards and resumes (contracts.md §7).
Json Answer(const Json& record) {
  if (record["response"].is_null()) return record["error"];
  const Json& body = record["response"]["body"];
  if (!body.contains("choices")) return body;
  return {{"choices", body["choices"]},
          {"prompt_tokens", body["usage"]["prompt_tokens"]},
          {"completion_tokens", body["usage"]["completion_tokens"]}};
}

void ExpectSameAnswers(const std::map<std::string, Json>& a, const std::map<std::string, Json>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, record] : a) {
    ASSERT_TRUE(b.count(key)) << key;
    EXPECT_EQ(Answer(record), Answer(b.at(key))) << key;
  }
}

class BatchCli : public ::testing::Test {
 protected:
  testing::CommandResult Batch(const std::string& input, const std::string& output, const std::string& options = "") {
    return RunCli("batch -m " + ShellQuote(testing::TextModelDir()) + " --input " + ShellQuote(input) +
                  " --output " + ShellQuote(output) + " " + options);
  }
  std::string Write(const std::string& name, const std::string& text) {
    testing::WriteFile(dir_.File(name), text);
    return dir_.File(name);
  }
  TempDir dir_;
};

TEST_F(BatchCli, EveryLineIsAnsweredOnceBadOnesWithErrors) {
  std::vector<Json> lines = MixedRequests(3);
  const std::string input = Write("in.jsonl", Jsonl(lines) + "{not json\n\n" + Jsonl({
      Chat("req-0", "again"),                                                   // repeated custom_id
      {{"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", {}}},      // no custom_id
      {{"custom_id", "bad-url"}, {"method", "POST"}, {"url", "/v1/embeddings"}, {"body", {}}},
      Chat("bad-field", "x", {{"top_p", "high"}}),
      Chat("too-long", "x", {{"max_tokens", 1 << 24}}),
  }));
  const auto result = Batch(input, dir_.File("out.jsonl"), "--parallel 2 --stop zzz");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "");  // stdout carries nothing; the output is the file
  const auto records = Records(dir_.File("out.jsonl"));
  ASSERT_EQ(records.size(), 9u);  // 10 lines, one blank, every other answered
  for (const char* id : {"req-0", "req-1", "req-2"}) {
    const Json& r = records.at(id);
    EXPECT_EQ(r["response"]["status_code"], 200) << id;
    EXPECT_TRUE(r["error"].is_null());
    EXPECT_TRUE(r["id"].get<std::string>().starts_with("batch_req_"));
    const Json& body = r["response"]["body"];
    EXPECT_EQ(body["object"], "chat.completion");
    EXPECT_EQ(body["model"], "deepseek-v4-flash");
    EXPECT_EQ(body["choices"][0]["message"]["role"], "assistant");
    EXPECT_EQ(body["choices"][0]["finish_reason"], "length");  // random weights do not stop within 8 tokens
    const Json& usage = body["usage"];
    EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());
    EXPECT_TRUE(usage["prompt_tokens_details"].contains("cached_tokens"));
  }
  // Thinking by default (DeepSeek's API for V4): reasoning, then the answer.
  EXPECT_TRUE(records.at("req-0")["response"]["body"]["choices"][0]["message"]["reasoning_content"].is_string());
  EXPECT_EQ(records.at("line 3")["error"]["code"], "invalid_json");
  EXPECT_NE(records.at("line 3")["error"]["message"].get<std::string>().find("input line 4"), std::string::npos);
  EXPECT_EQ(records.at("line 5")["error"]["code"], "duplicate_custom_id");
  EXPECT_NE(records.at("line 5")["error"]["message"].get<std::string>().find("repeats line 1"), std::string::npos);
  EXPECT_EQ(records.at("line 6")["error"]["code"], "missing_custom_id");
  const auto param = [&](const char* id) { return records.at(id)["response"]["body"]["error"]["param"]; };
  EXPECT_EQ(records.at("bad-url")["response"]["status_code"], 400);
  EXPECT_EQ(param("bad-url"), "url");
  EXPECT_EQ(param("bad-field"), "top_p");
  EXPECT_EQ(param("too-long"), "max_tokens");
  EXPECT_NE(result.err.find("batch: 10 lines of shard 0/1 done"), std::string::npos) << result.err;
}

TEST_F(BatchCli, AnswersDoNotDependOnParallelOrShards) {
  // 8 lines still hold every kind MixedRequests makes.
  const int lines = testing::SizeUnlessSanitized(12, 8);
  const std::string input = Write("in.jsonl", Jsonl(MixedRequests(lines)));
  ASSERT_EQ(Batch(input, dir_.File("one.jsonl"), "--parallel 1").exit_code, 0);
  const auto one = Records(dir_.File("one.jsonl"));
  ASSERT_EQ(one.size(), static_cast<size_t>(lines));
  const auto many = Batch(input, dir_.File("many.jsonl"), "--parallel 8 --chunk 7 --threads 1");
  ASSERT_EQ(many.exit_code, 0) << many.err;
  ExpectSameAnswers(one, Records(dir_.File("many.jsonl")));
  std::map<std::string, Json> shards;
  std::string parts;
  for (int i = 0; i < 3; ++i) {
    const std::string out = dir_.File("shard" + std::to_string(i) + ".jsonl");
    ASSERT_EQ(Batch(input, out, "--parallel 3 --shard " + std::to_string(i) + "/3").exit_code, 0);
    for (auto& [key, record] : Records(out)) {
      EXPECT_EQ(std::stoi(key.substr(4)) % 3, i) << key;  // line k belongs to shard k mod 3
      EXPECT_TRUE(shards.emplace(key, record).second) << key;
    }
    parts += " " + ShellQuote(out);
  }
  ExpectSameAnswers(one, shards);
  // dsv4 merge joins them into one file in input order.
  const std::string merged = dir_.File("merged.jsonl");
  const auto merge = RunCli("merge --input " + ShellQuote(input) + " --output " + ShellQuote(merged) + parts);
  ASSERT_EQ(merge.exit_code, 0) << merge.err;
  ExpectSameAnswers(one, Records(merged));
  std::istringstream in(testing::ReadFile(merged));
  std::string line;
  for (int i = 0; std::getline(in, line); ++i) EXPECT_EQ(Json::parse(line)["custom_id"], "req-" + std::to_string(i));
}

TEST_F(BatchCli, MergeNamesWhatIsMissingOrRepeated) {
  std::vector<Json> lines = MixedRequests(4);
  const std::string input = Write("in.jsonl", Jsonl(lines) + "oops\n");
  std::vector<std::string> parts;
  for (int i = 0; i < 2; ++i) {
    parts.push_back(dir_.File("part" + std::to_string(i) + ".jsonl"));
    ASSERT_EQ(Batch(input, parts[i], "--shard " + std::to_string(i) + "/2").exit_code, 0);
  }
  const auto merge = [&](const std::vector<std::string>& given) {
    std::string args = "merge --input " + ShellQuote(input) + " --output " + ShellQuote(dir_.File("m.jsonl"));
    for (const std::string& part : given) args += " " + ShellQuote(part);
    return RunCli(args);
  };
  EXPECT_EQ(merge(parts).exit_code, 0);
  EXPECT_EQ(Records(dir_.File("m.jsonl")).size(), 5u);  // the bad line 5 has its id-less record
  EXPECT_NE(merge({parts[0]}).err.find("shards missing: 1/2"), std::string::npos);
  EXPECT_NE(merge({parts[0], parts[0]}).err.find("shard 0/2 is given twice"), std::string::npos);
  // A part that lost a record (its run was cut short and not resumed).
  const std::string short_part = dir_.File("short.jsonl");
  std::string text = testing::ReadFile(parts[1]);
  testing::WriteFile(short_part, text.substr(text.find('\n') + 1));
  std::filesystem::copy_file(parts[1] + ".dsv4", short_part + ".dsv4");
  const auto missing = merge({parts[0], short_part});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("1 input lines have no answer"), std::string::npos) << missing.err;
  testing::WriteFile(short_part, text + "{\"custom_id\": \"req-1\", \"resp");  // torn
  EXPECT_NE(merge({parts[0], short_part}).err.find("its last line is torn"), std::string::npos);
  // Shards of another input or other settings.
  const std::string other = Write("other.jsonl", Jsonl(MixedRequests(2)));
  ASSERT_EQ(Batch(other, dir_.File("o1.jsonl"), "--shard 1/2").exit_code, 0);
  EXPECT_NE(merge({parts[0], dir_.File("o1.jsonl")}).err.find("computed from another input"), std::string::npos);
  ASSERT_EQ(Batch(input, dir_.File("t1.jsonl"), "--shard 1/2 --temperature 0.5").exit_code, 0);
  EXPECT_NE(merge({parts[0], dir_.File("t1.jsonl")}).err.find("defaults.temperature"), std::string::npos);
}

TEST_F(BatchCli, KilledAtRandomMomentsAndResumedLosesAndRepeatsNothing) {
  const std::string input = Write("in.jsonl", Jsonl(MixedRequests(testing::SizeUnlessSanitized(24, 12))));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(Batch(input, dir_.File("whole.jsonl"), "--parallel 2").exit_code, 0);
  const double whole_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const auto whole = Records(dir_.File("whole.jsonl"));

  const std::string output = dir_.File("killed.jsonl");
  const std::vector<std::string> args = {DSV4_CLI_BINARY, "batch",    "-m",       testing::TextModelDir(),
                                         "--input",       input,      "--output", output,
                                         "--parallel",    "2"};
  std::mt19937 random(7);
  std::uniform_real_distribution<double> moment(0.05, 1.0);
  int kills = 0;
  for (int attempt = 0; attempt < testing::SizeUnlessSanitized(12, 6); ++attempt) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      freopen("/dev/null", "w", stderr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(moment(random) * whole_ms));
    const bool killed = kill(pid, SIGKILL) == 0;
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) {
      ASSERT_EQ(WEXITSTATUS(status), 0);
      break;  // it finished before the kill
    }
    kills += killed;
    Records(output);  // whatever was written so far holds no duplicate (and parses but for a torn end)
  }
  const auto resumed = Batch(input, output, "--parallel 3");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_GT(kills, 0);
  ExpectSameAnswers(whole, Records(output));
}

// A full disk (here a file-size limit) stops the batch with a clear error; the
// output keeps only whole records, and a run with space again finishes it with
// nothing lost or repeated.
TEST_F(BatchCli, AFullDiskStopsWithAClearErrorAndTheResumeLosesNothing) {
  const std::string input = Write("in.jsonl", Jsonl(MixedRequests(8)));
  ASSERT_EQ(Batch(input, dir_.File("whole.jsonl"), "--parallel 2").exit_code, 0);
  const auto whole = Records(dir_.File("whole.jsonl"));
  const int64_t limit = static_cast<int64_t>(testing::ReadFile(dir_.File("whole.jsonl")).size() / 3);

  const std::string output = dir_.File("full.jsonl");
  const auto full = testing::RunCliWithFileSizeLimit(
      limit, "batch -m " + ShellQuote(testing::TextModelDir()) + " --input " + ShellQuote(input) + " --output " +
                 ShellQuote(output) + " --parallel 2");
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_NE(full.err.find(output + ": cannot append a record (File too large)"), std::string::npos) << full.err;
  const std::string written = testing::ReadFile(output);
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(written.back(), '\n') << "a torn record was left";
  EXPECT_LT(Records(output).size(), whole.size());

  const auto resumed = Batch(input, output, "--parallel 2");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  ExpectSameAnswers(whole, Records(output));
}

TEST_F(BatchCli, ASharedSystemPromptIsPrefilledOnce) {
  std::string system = "You are a careful assistant for contract review.";
  while (system.size() < 3000) system += " Answer precisely, cite the clause, and never invent facts.";
  std::vector<Json> lines;
  for (int i = 0; i < 8; ++i) {
    Json line = Chat("doc-" + std::to_string(i), "Document " + std::to_string(i) + ": summarise it.",
                     {{"max_tokens", 3}, {"thinking", {{"type", "disabled"}}}});
    line["body"]["messages"].insert(line["body"]["messages"].begin(), Json{{"role", "system"}, {"content", system}});
    lines.push_back(line);
  }
  // The rendered prompts share everything up to the user's text.
  const Tokenizer& tokenizer = testing::RealTokenizer();
  std::vector<std::vector<int32_t>> prompts;
  for (const Json& line : lines) prompts.push_back(tokenizer.Encode(RenderChat(line["body"]["messages"], ReasoningMode::kChat)));
  size_t shared = 0;
  while (std::all_of(prompts.begin(), prompts.end(), [&](const auto& p) { return p[shared] == prompts[0][shared]; })) ++shared;
  ASSERT_GT(shared, 600u);
  int64_t total = 0;
  for (const auto& p : prompts) total += static_cast<int64_t>(p.size());
  const int64_t reused_each = static_cast<int64_t>(shared) / 128 * 128;

  const auto result = Batch(Write("in.jsonl", Jsonl(lines)), dir_.File("out.jsonl"), "--parallel 8");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string expected = "prompt tokens " + std::to_string(total) + " (" + std::to_string(7 * reused_each) +
                               " reused from shared prefixes, " + std::to_string(total - 7 * reused_each) +
                               " computed)";
  EXPECT_NE(result.err.find(expected), std::string::npos) << expected << "\n" << result.err;
  int computed_once = 0;
  for (const auto& [key, record] : Records(dir_.File("out.jsonl"))) {
    const int64_t cached = record["response"]["body"]["usage"]["prompt_tokens_details"]["cached_tokens"];
    EXPECT_TRUE(cached == 0 || cached == reused_each) << key << " " << cached;
    computed_once += cached == 0;
  }
  EXPECT_EQ(computed_once, 1);
}

TEST_F(BatchCli, AnOutputOfAnotherInputOrSettingsIsRefused) {
  const std::string a = Write("a.jsonl", Jsonl(MixedRequests(2)));
  const std::string b = Write("b.jsonl", Jsonl(MixedRequests(3)));
  const std::string out = dir_.File("out.jsonl");
  ASSERT_EQ(Batch(a, out).exit_code, 0);
  const std::string before = testing::ReadFile(out);
  auto refused = Batch(b, out);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.err.find("computed with input."), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--fresh"), std::string::npos) << refused.err;
  refused = Batch(a, out, "--mode chat");
  EXPECT_NE(refused.err.find("defaults.mode"), std::string::npos) << refused.err;
  EXPECT_EQ(testing::ReadFile(out), before);  // untouched
  const auto fresh = Batch(b, out, "--fresh");
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(Records(out).size(), 3u);
  const auto missing = Batch(dir_.File("none.jsonl"), out);
  EXPECT_NE(missing.err.find("none.jsonl"), std::string::npos);
  EXPECT_NE(Batch(a, out, "--shard 3/3").err.find("--shard"), std::string::npos);
}

}  // namespace
}  // namespace dsv4
