#include "engine/runtime/progress_line.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace dsv4 {
namespace {

// What was written to `file` so far.
std::string Contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) text.push_back(static_cast<char>(c));
  return text;
}

TEST(ProgressLine, ALogGetsWholeLinesAndQuickWorkOnlyItsLastState) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  ProgressLine line(file, /*terminal=*/false);
  EXPECT_FALSE(line.Update(false, "step %d of %d", 1, 3));  // not due before 5 seconds
  EXPECT_TRUE(line.Update(true, "step %d of %d", 3, 3));
  EXPECT_EQ(Contents(file), "step 3 of 3\n");
  std::fclose(file);
}

TEST(ProgressLine, ATerminalLineIsRewrittenInPlaceAndEnded) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  ProgressLine line(file, /*terminal=*/true);
  EXPECT_FALSE(line.Update(false, "early"));  // the first update waits half a second
  std::this_thread::sleep_for(std::chrono::milliseconds(550));
  EXPECT_TRUE(line.Update(false, "prefill %d tokens", 8192));
  EXPECT_FALSE(line.Update(false, "too soon"));
  EXPECT_TRUE(line.Update(true, "done"));
  // The shorter last state covers what is left of the longer one.
  EXPECT_EQ(Contents(file), "\rprefill 8192 tokens\rdone               \n");
  std::fclose(file);
}

}  // namespace
}  // namespace dsv4
