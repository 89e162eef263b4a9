#include "engine/runtime/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace dsv4 {

StopMatcher::StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}

size_t StopMatcher::FirstStop() const {
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) first = std::min(first, held_.find(stop));
  return first;
}

size_t StopMatcher::FirstPartial() const {
  for (size_t start = 0; start < held_.size(); ++start) {
    const std::string_view tail = std::string_view(held_).substr(start);
    for (const std::string& stop : stops_) {
      if (stop.size() > tail.size() && stop.starts_with(tail)) return start;
    }
  }
  return held_.size();
}

StopMatcher::Result StopMatcher::Push(std::string_view piece) {
  if (stopped_) return {"", true};
  held_.append(piece);
  const size_t stop = FirstStop();
  const size_t partial = FirstPartial();
  // A stop string that completed wins unless one starting earlier may still
  // complete (one starting at the same place would cut at the same place).
  if (stop != std::string::npos && partial >= stop) {
    stopped_ = true;
    Result result{held_.substr(0, stop), true};
    held_.clear();
    return result;
  }
  Result result{held_.substr(0, partial), false};
  held_.erase(0, partial);
  return result;
}

std::string StopMatcher::Finish() {
  const size_t stop = FirstStop();
  stopped_ = stopped_ || stop != std::string::npos;
  std::string text = held_.substr(0, stop);
  held_.clear();
  return text;
}

}  // namespace dsv4
