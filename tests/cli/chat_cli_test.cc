// dsv4 chat end to end on a small random model with the real tokenizer: the
// turns are checked through the statistics line each prints on stderr and
// against the official rendering of the conversation.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
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

// What the "[turn N: ...]" line on stderr says about one turn.
struct TurnStats {
  int64_t turn, prompt, reused, generated;
  std::string finish;
};

std::vector<TurnStats> Turns(const std::string& err) {
  static const std::regex line(
      R"(\[turn (\d+): (\d+) prompt tokens, (\d+) reused from cache, (\d+) generated[^\]]*, finish (\w+)\])");
  std::vector<TurnStats> turns;
  for (std::sregex_iterator it(err.begin(), err.end(), line), end; it != end; ++it) {
    const std::smatch& m = *it;
    turns.push_back({std::stoll(m[1]), std::stoll(m[2]), std::stoll(m[3]), std::stoll(m[4]), m[5]});
  }
  return turns;
}

// Chat on the random model with the real tokenizer (testing::TextModelDir).
class ChatCli : public ::testing::Test {
 protected:
  // `dsv4 chat` on the model, short answers unless told.
  static testing::CommandResult Chat(const std::string& options, const std::string& input, int max_tokens = 8) {
    return RunCli(ChatArgs() + " -n " + std::to_string(max_tokens) + " " + options, input);
  }
  static std::string ChatArgs() { return "chat -m " + ShellQuote(testing::TextModelDir()); }

  static int64_t PromptTokens(const Json& messages, ReasoningMode mode = ReasoningMode::kChat) {
    return static_cast<int64_t>(testing::RealTokenizer().Encode(RenderChat(messages, mode)).size());
  }

};

Json User(const std::string& content) { return {{"role", "user"}, {"content", content}}; }

TEST_F(ChatCli, SecondTurnReusesTheFirstFromTheCache) {
  const auto result = Chat("--temperature 0", "Hello\nHow are you?\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<TurnStats> turns = Turns(result.err);
  ASSERT_EQ(turns.size(), 2u) << result.err;
  EXPECT_EQ(turns[0].turn, 1);
  EXPECT_EQ(turns[0].prompt, PromptTokens(Json::array({User("Hello")})));
  EXPECT_EQ(turns[0].reused, 0);
  EXPECT_EQ(turns[1].turn, 2);
  // At least the checkpoint just before the first prompt's last token.
  EXPECT_GE(turns[1].reused, turns[0].prompt - 1);
  EXPECT_LT(turns[1].reused, turns[1].prompt);
  ASSERT_FALSE(result.out.empty());
  EXPECT_EQ(result.out.back(), '\n');
}

TEST_F(ChatCli, SeedRepeatsTheSession) {
  const std::string input = "Tell me a story\nAnother one\n";
  const auto first = Chat("--seed 7", input);
  const auto second = Chat("--seed 7", input);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Turns(first.err).size(), 2u);
  EXPECT_FALSE(first.out.empty());
  EXPECT_EQ(first.out, second.out);
  EXPECT_NE(Chat("--seed 8", input).out, first.out);
}

TEST_F(ChatCli, ResetKeepsOnlyTheSystemPrompt) {
  // Longer than 128 tokens, so the cache holds checkpoints inside it.
  std::string system;
  for (int i = 0; i < 40; ++i) system += "You are a careful assistant. ";
  const auto result = Chat("--temperature 0 --system " + ShellQuote(system), "First question\n/reset\nSomething else\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::vector<TurnStats> turns = Turns(result.err);
  ASSERT_EQ(turns.size(), 2u) << result.err;
  const Json system_message = {{"role", "system"}, {"content", system}};
  const std::vector<int32_t> a = testing::RealTokenizer().Encode(RenderChat(Json::array({system_message, User("First question")}), ReasoningMode::kChat));
  const std::vector<int32_t> b = testing::RealTokenizer().Encode(RenderChat(Json::array({system_message, User("Something else")}), ReasoningMode::kChat));
  const int64_t shared = std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first - a.begin();
  ASSERT_GT(shared, 128);
  EXPECT_EQ(turns[1].turn, 1);  // a new conversation
  EXPECT_EQ(turns[1].prompt, static_cast<int64_t>(b.size()));
  EXPECT_GT(turns[1].reused, 0);
  EXPECT_LE(turns[1].reused, shared);
}

TEST_F(ChatCli, SavedConversationContinuesInAnotherProcess) {
  TempDir tmp;
  const std::string file = tmp.File("chat.json");
  const auto whole = Chat("--temperature 0", "One\nTwo\nThree\n");
  const auto saved = Chat("--temperature 0", "One\nTwo\n/save " + file + "\n");
  const auto loaded = Chat("--temperature 0", "/load " + file + "\nThree\n");
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  ASSERT_EQ(loaded.exit_code, 0) << loaded.err;

  const Json conversation = Json::parse(testing::ReadFile(file));
  EXPECT_EQ(conversation["mode"], "chat");
  const Json& messages = conversation["messages"];
  ASSERT_EQ(messages.size(), 4u);
  EXPECT_EQ(messages[2], User("Two"));
  EXPECT_EQ(messages[3]["role"], "assistant");
  const std::vector<TurnStats> turns = Turns(whole.err);
  ASSERT_EQ(turns.size(), 3u) << whole.err;
  // The saved history is what the uninterrupted session rendered.
  EXPECT_EQ(turns[1].prompt, PromptTokens(Json(messages.begin(), messages.begin() + 3)));
  Json next = messages;
  next.push_back(User("Three"));
  EXPECT_EQ(turns[2].prompt, PromptTokens(next));

  const std::vector<TurnStats> after_load = Turns(loaded.err);
  ASSERT_EQ(after_load.size(), 1u) << loaded.err;
  EXPECT_EQ(after_load[0].turn, 3);
  EXPECT_EQ(after_load[0].prompt, turns[2].prompt);
  EXPECT_EQ(after_load[0].reused, 0);
  // Computed without the cache, the answer is the same (batch invariance).
  ASSERT_LE(loaded.out.size(), whole.out.size());
  EXPECT_EQ(whole.out.substr(whole.out.size() - loaded.out.size()), loaded.out);
}

TEST_F(ChatCli, ThinkModeShowsReasoningApartAndKeepsTheBudget) {
  const auto result = Chat("--temperature 0 --reasoning-budget 2", "/mode think\nHello\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.rfind("--- reasoning ---\n", 0), 0u) << result.out;
  EXPECT_NE(result.out.find("\n--- answer ---\n"), std::string::npos) << result.out;
  const std::vector<TurnStats> turns = Turns(result.err);
  ASSERT_EQ(turns.size(), 1u) << result.err;
  EXPECT_EQ(turns[0].prompt, PromptTokens(Json::array({User("Hello")}), ReasoningMode::kThink));
  EXPECT_NE(result.err.find("(2 reasoning)"), std::string::npos) << result.err;
}

TEST_F(ChatCli, SetupErrorsAreOneLine) {
  for (const std::string& args : {ChatArgs() + " --temperature -1", ChatArgs() + " --mode fast",
                                  std::string("chat -m /nonexistent/model"), ChatArgs() + " --load-session x"}) {
    const auto result = RunCli(args, "Hello\n");
    EXPECT_NE(result.exit_code, 0) << args;
    EXPECT_EQ(result.out, "") << args;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << args << ": " << result.err;
    EXPECT_EQ(result.err.rfind("dsv4 chat: error: ", 0), 0u) << result.err;
  }
}

TEST_F(ChatCli, BadCommandsAndFilesDoNotEndTheChat) {
  TempDir tmp;
  testing::WriteFile(tmp.File("bad.json"), "{\"mode\": \"chat\", \"messages\": [{\"role\": \"robot\"}]}");
  const auto result = Chat("--temperature 0",
                           "/bogus\n/load " + tmp.File("missing.json") + "\n/load " + tmp.File("bad.json") +
                               "\n\n/mode fast\nHello\n/exit\nNot answered\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("/bogus"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("missing.json"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("bad.json"), std::string::npos) << result.err;
  const std::vector<TurnStats> turns = Turns(result.err);
  ASSERT_EQ(turns.size(), 1u) << result.err;  // Hello, not what follows /exit
  EXPECT_EQ(turns[0].prompt, PromptTokens(Json::array({User("Hello")})));
}

TEST_F(ChatCli, StopStringsNeverAppear) {
  const auto free = Chat("--temperature 0", "Hello\n", 16);
  ASSERT_EQ(free.exit_code, 0) << free.err;
  const std::string answer = free.out.substr(0, free.out.size() - 1);
  // Two characters from the middle of the answer.
  auto boundary = [&](size_t i) {
    while (i < answer.size() && (static_cast<unsigned char>(answer[i]) & 0xC0) == 0x80) ++i;
    return i;
  };
  const size_t begin = boundary(answer.size() / 2);
  const size_t end = boundary(boundary(begin + 1) + 1);
  ASSERT_LT(begin, end) << answer;
  const std::string stop = answer.substr(begin, end - begin);
  const auto stopped = Chat("--temperature 0 --stop " + ShellQuote(stop) + " --stop never-said", "Hello\nAgain\n", 16);
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.out.find(stop), std::string::npos) << stop;
  EXPECT_EQ(stopped.out.rfind(answer.substr(0, answer.find(stop)) + "\n", 0), 0u) << stopped.out;
  const std::vector<TurnStats> turns = Turns(stopped.err);
  ASSERT_EQ(turns.size(), 2u) << stopped.err;
  EXPECT_EQ(turns[0].finish, "stop");
}

// Ctrl-C while an answer streams cancels that turn only: the chat reads on,
// and the conversation is as before the turn.
TEST_F(ChatCli, InterruptCancelsTheTurn) {
  TempDir tmp;
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  const std::string command = std::string("exec '") + DSV4_CLI_BINARY + "' " + ChatArgs() +
                              " -n 6000 --temperature 0 2>" + ShellQuote(tmp.File("err"));
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    close(in[1]);
    close(out[0]);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  const std::string input = "Hello\n";
  ASSERT_EQ(write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  char buffer[4096];
  ASSERT_GT(read(out[0], buffer, sizeof buffer), 0);  // the answer streams
  kill(pid, SIGINT);
  const std::string rest = "/save " + tmp.File("chat.json") + "\n";
  ASSERT_EQ(write(in[1], rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
  close(in[1]);
  while (read(out[0], buffer, sizeof buffer) > 0) {
  }
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  const std::string err = testing::ReadFile(tmp.File("err"));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  const std::vector<TurnStats> turns = Turns(err);
  ASSERT_EQ(turns.size(), 1u) << err;
  EXPECT_EQ(turns[0].finish, "cancelled");
  EXPECT_LT(turns[0].generated, 6000);
  EXPECT_EQ(Json::parse(testing::ReadFile(tmp.File("chat.json")))["messages"], Json::array());
}

}  // namespace
}  // namespace dsv4
