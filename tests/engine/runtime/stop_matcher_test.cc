#include "engine/runtime/stop_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>


namespace dsv4 {
namespace {

// Everything a matcher lets out for these pieces, Finish included, and
// whether it stopped.
std::pair<std::string, bool> Stream(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopMatcher matcher(stops);
  std::string text;
  for (const std::string& piece : pieces) text += matcher.Push(piece).text;
  text += matcher.Finish();
  return {text, matcher.stopped()};
}

void ExpectPush(StopMatcher& matcher, std::string_view piece, const std::string& text, bool stopped) {
  const StopMatcher::Result result = matcher.Push(piece);
  EXPECT_EQ(result.text, text) << "after \"" << piece << "\"";
  EXPECT_EQ(result.stopped, stopped) << "after \"" << piece << "\"";
}

TEST(StopMatcher, WithoutStopsPassesPiecesThrough) {
  StopMatcher matcher({});
  ExpectPush(matcher, "Hello", "Hello", false);
  ExpectPush(matcher, "", "", false);
  ExpectPush(matcher, " world", " world", false);
  EXPECT_EQ(matcher.Finish(), "");
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, StopsAcrossPieceBoundaries) {
  StopMatcher matcher({"lo W"});
  ExpectPush(matcher, "Hel", "He", false);  // "l" may begin "lo W"
  ExpectPush(matcher, "lo Wor", "l", true);
  ExpectPush(matcher, "ld", "", true);  // nothing after a stop
  EXPECT_EQ(matcher.Finish(), "");
  EXPECT_TRUE(matcher.stopped());
}

TEST(StopMatcher, ReleasesAPrefixOnceTheTextDiverges) {
  StopMatcher matcher({"</stop>"});
  ExpectPush(matcher, "a</st", "a", false);
  ExpectPush(matcher, "o", "", false);
  ExpectPush(matcher, "ry", "</story", false);
  ExpectPush(matcher, "<", "", false);
  EXPECT_EQ(matcher.Finish(), "<");  // the end of the stream flushes a held prefix
  EXPECT_FALSE(matcher.stopped());
}

TEST(StopMatcher, TheEarliestOfSeveralStopsWins) {
  EXPECT_EQ(Stream({"foo", "bar"}, {"xxbarfoo"}), std::make_pair(std::string("xx"), true));
  EXPECT_EQ(Stream({"foo", "bar"}, {"xxfo", "obar"}), std::make_pair(std::string("xx"), true));
  EXPECT_EQ(Stream({"foo", "bar"}, {"no ", "stop"}), std::make_pair(std::string("no stop"), false));
}

TEST(StopMatcher, OverlappingStopsCutAtTheEarliestStart) {
  // "bc" completes first, but "abcd" starts earlier and may still complete.
  StopMatcher waits({"abcd", "bc"});
  ExpectPush(waits, "xabc", "x", false);
  ExpectPush(waits, "d", "", true);
  StopMatcher settles({"abcd", "bc"});
  ExpectPush(settles, "xabc", "x", false);
  ExpectPush(settles, "e", "a", true);
  StopMatcher ends({"abcd", "bc"});
  ExpectPush(ends, "xabc", "x", false);
  EXPECT_EQ(ends.Finish(), "a");  // the longer one can no longer complete
  EXPECT_TRUE(ends.stopped());
  // A stop overlapping itself: "aab" inside "aaab".
  EXPECT_EQ(Stream({"aab"}, {"aa", "ab"}), std::make_pair(std::string("a"), true));
}

TEST(StopMatcher, StopAtTheVeryStart) {
  StopMatcher matcher({"Hi"});
  ExpectPush(matcher, "Hi there", "", true);
  EXPECT_EQ(Stream({"Hi"}, {"H", "i"}), std::make_pair(std::string(""), true));
}

TEST(StopMatcher, MultiByteCharacters) {
  StopMatcher matcher({"世界"});
  ExpectPush(matcher, "你好世", "你好", false);
  ExpectPush(matcher, "界!", "", true);
  // Split inside a character: the lead byte waits as part of "é!".
  StopMatcher split({"é!"});
  ExpectPush(split, "caf\xC3", "caf", false);
  ExpectPush(split, "\xA9!", "", true);
  EXPECT_EQ(Stream({"éa"}, {"caf\xC3", "\xA9", "b"}), std::make_pair(std::string("caféb"), false));
}

// Whatever the pieces, the output is the text before the first stop.
TEST(StopMatcher, OutputDependsOnlyOnTheWholeText) {
  const std::vector<std::string> stops = {"abca", "bc", "cc a", "aab", "ba b"};
  std::mt19937_64 random(5);  // exactly specified (std's distributions are not)
  const auto below = [&](size_t n) { return static_cast<size_t>(random() % n); };
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    for (size_t i = 0, length = below(24); i < length; ++i) text += "abc "[below(4)];
    size_t cut = std::string::npos;
    for (const std::string& stop : stops) cut = std::min(cut, text.find(stop));
    std::vector<std::string> pieces;
    for (size_t at = 0; at < text.size();) {
      const size_t length = 1 + below(4);
      pieces.push_back(text.substr(at, length));
      at += length;
    }
    ASSERT_EQ(Stream(stops, pieces), std::make_pair(text.substr(0, cut), cut != std::string::npos))
        << "text \"" << text << "\"";
  }
}

}  // namespace
}  // namespace dsv4
