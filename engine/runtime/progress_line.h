// Progress of long work on stderr as one line. On a terminal the line is
// rewritten in place at most twice a second; anywhere else (a log file, a
// pipe) each update is a whole line, at most one every five seconds, so that
// a log of a night's run reads line by line instead of as one line of
// carriage returns. The first update waits one interval (quick work shows
// nothing); a last state is always shown and ends the line.
#pragma once

#include <chrono>
#include <cstdarg>
#include <cstdio>

namespace dsv4 {

class ProgressLine {
 public:
  // Writes to stderr, rewriting in place if stderr is a terminal.
  ProgressLine();
  ProgressLine(std::FILE* out, bool terminal);

  // Shows the state, printf-style, if an update is due or if it is the
  // `last` (which ends the line); returns whether it showed it.
  bool Update(bool last, const char* format, ...) __attribute__((format(printf, 3, 4)));

  // Seconds since construction.
  double Seconds() const;

 private:
  void Write(const char* format, va_list args, bool end_line);

  std::FILE* out_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  double next_;              // seconds from start_ at which the next update is due
  size_t shown_length_ = 0;  // of the text on the terminal's open line
};

}  // namespace dsv4
