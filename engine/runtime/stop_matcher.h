// Stop strings over streamed text. A stop string may span several tokens, so
// text that could still turn out to begin one is held back until it cannot;
// the text is cut before the earliest occurrence of any stop string (by start
// position), which is never returned. What comes out depends only on the
// whole text, not on how it was split into pieces.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dsv4 {

class StopMatcher {
 public:
  // stops: non-empty strings (ValidateSampling checks a request's).
  explicit StopMatcher(std::vector<std::string> stops);

  struct Result {
    std::string text;  // safe to emit now
    bool stopped;      // a stop string completed: text ends where it began
  };

  // Adds the next piece of decoded text. With no stop strings, returns the
  // piece at once. After a stop, returns nothing more.
  Result Push(std::string_view piece);

  // The held-back text at the end of the stream, up to a stop string that it
  // completes (one that waited on a longer candidate starting earlier).
  std::string Finish();

  // Whether a stop string ended the text (in Push or in Finish).
  bool stopped() const { return stopped_; }

 private:
  // Start of the earliest complete stop string in held_, or npos.
  size_t FirstStop() const;
  // Start of the longest suffix of held_ that is a proper prefix of some
  // stop string (might still become one), or held_.size().
  size_t FirstPartial() const;

  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace dsv4
