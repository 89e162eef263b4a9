// Paths to the bundled fixtures and a way to run the dsv4 binary in tests.
#pragma once

#include <functional>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/text/tokenizer.h"

namespace dsv4::testing {

// Absolute path of tests/data/<relative>.
std::string DataPath(const std::string& relative);

// A fresh empty directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = 0;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `dsv4 <args>` through /bin/sh (args are shell words, quote as needed),
// optionally feeding `input` on stdin.
CommandResult RunCli(const std::string& args, const std::string& input = "");

// Sanitized builds (ASan + UBSan, TSan) run every test several times slower.
// Tests whose size is there for a long run's sake (lengths, repetitions) take
// `sanitized` there instead of `full`: the same code paths, fewer rounds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
constexpr int64_t SizeUnlessSanitized(int64_t full, int64_t sanitized) { return kSanitized ? sanitized : full; }

// RunCli with every file dsv4 writes capped at `bytes` (prlimit --fsize), as a
// full disk would stop it; stderr goes through a pipe, so it is never cut.
CommandResult RunCliWithFileSizeLimit(int64_t bytes, const std::string& args);

// `text` as one shell word.
std::string ShellQuote(const std::string& text);

// The real DeepSeek-V4 tokenizer (tests/data/tokenizer), loaded once.
const Tokenizer& RealTokenizer();

// A random model with the real 129,280-token vocabulary and tokenizer
// (`synth --like tiny --vocab 129280`), for tests of text in and out: written
// on first use (a few seconds), removed when the process exits.
const std::string& TextModelDir();

// What dsv4::Error `f` throws, or "(no error)".
std::string ErrorOf(const std::function<void()>& f);

// n token ids in [3, 1003) (inside the tiny fixture's vocabulary), a
// different sequence for each salt.
std::vector<int32_t> TokenIds(int64_t n, int32_t salt);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);

}  // namespace dsv4::testing
