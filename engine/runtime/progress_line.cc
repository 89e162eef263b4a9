#include "engine/runtime/progress_line.h"

#include <unistd.h>

#include <algorithm>
#include <vector>

namespace dsv4 {

namespace {

constexpr double kTerminalInterval = 0.5;  // seconds between rewrites in place
constexpr double kLogInterval = 5.0;       // seconds between whole lines

// Asked once per process: a ProgressLine is made per SequenceRunner::Feed,
// i.e. per decode token, where a syscall each time is waste.
bool StderrIsTerminal() {
  static const bool terminal = isatty(STDERR_FILENO) != 0;
  return terminal;
}

}  // namespace

ProgressLine::ProgressLine() : ProgressLine(stderr, StderrIsTerminal()) {}

ProgressLine::ProgressLine(std::FILE* out, bool terminal)
    : out_(out), terminal_(terminal), next_(terminal ? kTerminalInterval : kLogInterval) {}

double ProgressLine::Seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

bool ProgressLine::Update(bool last, const char* format, ...) {
  if (!last && Seconds() < next_) return false;
  va_list args;
  va_start(args, format);
  Write(format, args, last);
  va_end(args);
  next_ = Seconds() + (terminal_ ? kTerminalInterval : kLogInterval);
  return true;
}

void ProgressLine::Write(const char* format, va_list args, bool end_line) {
  va_list copy;
  va_copy(copy, args);
  const int length = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  std::vector<char> text(static_cast<size_t>(std::max(length, 0)) + 1);
  std::vsnprintf(text.data(), text.size(), format, args);
  const size_t size = text.size() - 1;
  if (terminal_) {
    // Spaces over what is left of a longer previous state.
    const int pad = shown_length_ > size ? static_cast<int>(shown_length_ - size) : 0;
    std::fprintf(out_, "\r%s%*s%s", text.data(), pad, "", end_line ? "\n" : "");
    shown_length_ = end_line ? 0 : size;
  } else {
    std::fprintf(out_, "%s\n", text.data());
  }
  std::fflush(out_);
}

}  // namespace dsv4
