// `dsv4 bench -m DIR --plot FILE.svg`: the run as a picture. One panel per
// question the bench answers, each with the machine's roofline beside what was
// measured, so a user sees at a glance where their server stands.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace dsv4::cli {

struct PlotSeries {
  std::string name;
  std::string color;  // any SVG color
  bool roofline = false;  // drawn dashed: the bound, not a measurement
  std::vector<std::pair<double, double>> points;  // (x, y), x > 0
};

struct PlotPanel {
  std::string title, x_label, y_label;
  bool log_x = false;  // x on a log2 scale (context lengths, sequence counts)
  std::vector<PlotSeries> series;
};

// A self-contained SVG document: the title line, then the panels side by side.
// Panels without any point are left out; text is XML-escaped.
std::string RenderPlotSvg(const std::string& title, const std::vector<PlotPanel>& panels);

}  // namespace dsv4::cli
