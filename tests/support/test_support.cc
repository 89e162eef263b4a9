#include "tests/support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "loader/error.h"

namespace dsv4::testing {

std::string DataPath(const std::string& relative) { return std::string(DSV4_TEST_DATA) + "/" + relative; }

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dsv4-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

namespace {

// Runs `command` (which reads `stdin`, writes `stdout` and `stderr` in a temp
// folder, given as arguments to `make_command`) through bash.
CommandResult RunShell(const std::function<std::string(const std::string& in, const std::string& out,
                                                       const std::string& err)>& make_command,
                       const std::string& input) {
  TempDir dir;
  const std::string in_path = dir.File("stdin"), out_path = dir.File("stdout"), err_path = dir.File("stderr");
  WriteFile(in_path, input);
  const std::string command = "bash -c " + ShellQuote(make_command(in_path, out_path, err_path));
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

}  // namespace

CommandResult RunCli(const std::string& args, const std::string& input) {
  return RunShell(
      [&](const std::string& in, const std::string& out, const std::string& err) {
        return std::string("'") + DSV4_CLI_BINARY + "' " + args + " <'" + in + "' >'" + out + "' 2>'" + err + "'";
      },
      input);
}

CommandResult RunCliWithFileSizeLimit(int64_t bytes, const std::string& args) {
  return RunShell(
      [&](const std::string& in, const std::string& out, const std::string& err) {
        // A process killed by a signal exits 128 + signal number through bash too.
        return "set -o pipefail; prlimit --fsize=" + std::to_string(bytes) + " '" + DSV4_CLI_BINARY + "' " + args +
               " <'" + in + "' 2>&1 >'" + out + "' | cat >'" + err + "'";
      },
      "");
}

std::string ShellQuote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

const Tokenizer& RealTokenizer() {
  static const Tokenizer tokenizer = Tokenizer::FromFile(DataPath("tokenizer/tokenizer.json"));
  return tokenizer;
}

const std::string& TextModelDir() {
  static const TempDir dir;
  static const std::string model = [] {
    const std::string path = dir.File("model");
    const CommandResult result = RunCli("synth --like tiny --vocab 129280 --tokenizer " +
                                        ShellQuote(DataPath("tokenizer/tokenizer.json")) + " --out " + ShellQuote(path));
    if (result.exit_code != 0) throw std::runtime_error("synth failed: " + result.err);
    return path;
  }();
  return model;
}

std::vector<int32_t> TokenIds(int64_t n, int32_t salt) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919 + salt * 104729) % 1000 + 3);
  return ids;
}

}  // namespace dsv4::testing
