// The SVG of `dsv4 bench --plot`: a well-formed document with one panel per
// question that has points, one line and one marker per point of each series,
// the rooflines dashed, log2 x positions, and escaped text.
#include "cli/bench_plot.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

namespace dsv4::cli {
namespace {

int Count(const std::string& text, const std::string& needle) {
  int count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

std::vector<double> CircleXs(const std::string& svg) {
  std::vector<double> xs;
  const std::regex circle("<circle cx=\"([0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle); it != std::sregex_iterator(); ++it) {
    xs.push_back(std::stod((*it)[1]));
  }
  return xs;
}

TEST(BenchPlot, DrawsEveryPointOfEveryPanelWithItsRoofline) {
  PlotPanel context{"Speed against context", "context", "tok/s", true,
                    {{"decode", "blue", false, {{1024, 20}, {4096, 19}, {16384, 17}}},
                     {"roofline", "blue", true, {{1024, 30}, {4096, 30}, {16384, 30}}}}};
  PlotPanel sequences{"Many sequences", "sequences", "tok/s", true, {{"decode", "green", false, {{1, 20}, {16, 80}}}}};
  const std::string svg = RenderPlotSvg("model <a & b>", {context, sequences});
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\""), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_NE(svg.find("model &lt;a &amp; b&gt;"), std::string::npos);
  EXPECT_EQ(Count(svg, "<polyline"), 3);
  EXPECT_EQ(Count(svg, "<circle"), 8);
  EXPECT_EQ(Count(svg, "stroke-dasharray"), 2);  // the roofline and its legend
  EXPECT_EQ(Count(svg, "<g "), Count(svg, "</g>"));
  EXPECT_NE(svg.find(">16k<"), std::string::npos);  // context ticks in k
  // log2 x: 1k, 4k and 16k are evenly spaced.
  const std::vector<double> xs = CircleXs(svg);
  ASSERT_GE(xs.size(), 3u);
  EXPECT_NEAR(xs[1] - xs[0], xs[2] - xs[1], 1e-6);
}

TEST(BenchPlot, LeavesOutPanelsWithoutPoints) {
  PlotPanel context{"Speed", "context", "tok/s", true, {{"decode", "blue", false, {{64, 10}}}}};
  PlotPanel empty{"Many sequences", "sequences", "tok/s", true, {{"decode", "green", false, {}}}};
  const std::string svg = RenderPlotSvg("t", {context, empty});
  EXPECT_NE(svg.find("width=\"480\""), std::string::npos);
  EXPECT_EQ(svg.find("Many sequences"), std::string::npos);
  EXPECT_EQ(Count(svg, "<circle"), 1);
}

}  // namespace
}  // namespace dsv4::cli
