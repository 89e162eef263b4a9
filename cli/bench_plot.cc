#include "cli/bench_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace dsv4::cli {
namespace {

constexpr double kPanelWidth = 480, kPanelHeight = 360, kTitleHeight = 40;
// The plot area inside a panel.
constexpr double kLeft = 70, kRight = 20, kTop = 40, kBottom = 60;

std::string Escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Number(double value) {
  char buffer[32];
  if (value >= 1e6 && std::fmod(value, 1 << 20) == 0) {
    std::snprintf(buffer, sizeof buffer, "%gM", value / (1 << 20));
  } else if (value >= 1024 && std::fmod(value, 1024) == 0) {
    std::snprintf(buffer, sizeof buffer, "%gk", value / 1024);
  } else if (value >= 100) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.3g", value);
  }
  return buffer;
}

// The smallest 1, 2 or 5 times a power of ten at or above `value`.
double NiceCeiling(double value) {
  if (value <= 0) return 1;
  const double power = std::pow(10.0, std::floor(std::log10(value)));
  for (const double step : {1.0, 2.0, 5.0, 10.0}) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

// Where x and y land inside one panel.
struct Scale {
  double x_min, x_max, y_max;
  bool log_x;
  double X(double x) const {
    const double lo = log_x ? std::log2(x_min) : x_min, hi = log_x ? std::log2(x_max) : x_max;
    const double v = log_x ? std::log2(x) : x;
    const double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    return kLeft + t * (kPanelWidth - kLeft - kRight);
  }
  double Y(double y) const { return kTop + (1 - y / y_max) * (kPanelHeight - kTop - kBottom); }
};

void RenderPanel(const PlotPanel& panel, double x0, double y0, std::ostringstream& svg) {
  double x_min = 0, x_max = 0, y_max = 0;
  std::vector<double> xs;
  for (const PlotSeries& s : panel.series) {
    for (const auto& [x, y] : s.points) {
      if (xs.empty() || x < x_min) x_min = x;
      if (xs.empty() || x > x_max) x_max = x;
      xs.push_back(x);
      y_max = std::max(y_max, y);
    }
  }
  const Scale scale{x_min, x_max, NiceCeiling(y_max * 1.05), panel.log_x};
  svg << "<g transform=\"translate(" << x0 << "," << y0 << ")\">\n";
  svg << "<text x=\"" << kPanelWidth / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
      << Escape(panel.title) << "</text>\n";
  // Axes, y grid and ticks.
  const double bottom = kPanelHeight - kBottom, right = kPanelWidth - kRight;
  for (int i = 0; i <= 5; ++i) {
    const double y = scale.y_max * i / 5, py = scale.Y(y);
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << py << "\" x2=\"" << right << "\" y2=\"" << py
        << "\" stroke=\"#ddd\"/>\n<text x=\"" << kLeft - 6 << "\" y=\"" << py + 4
        << "\" text-anchor=\"end\" font-size=\"11\">" << Number(y) << "</text>\n";
  }
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  for (const double x : xs) {
    svg << "<text x=\"" << scale.X(x) << "\" y=\"" << bottom + 16 << "\" text-anchor=\"middle\" font-size=\"11\">"
        << Number(x) << "</text>\n";
  }
  svg << "<line x1=\"" << kLeft << "\" y1=\"" << bottom << "\" x2=\"" << right << "\" y2=\"" << bottom
      << "\" stroke=\"black\"/>\n<line x1=\"" << kLeft << "\" y1=\"" << kTop << "\" x2=\"" << kLeft << "\" y2=\""
      << bottom << "\" stroke=\"black\"/>\n";
  svg << "<text x=\"" << (kLeft + right) / 2 << "\" y=\"" << bottom + 34 << "\" text-anchor=\"middle\" font-size=\"12\">"
      << Escape(panel.x_label) << "</text>\n";
  svg << "<text transform=\"translate(16," << (kTop + bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\" "
      << "font-size=\"12\">" << Escape(panel.y_label) << "</text>\n";
  // Series, then their legend below the x label.
  double legend_x = kLeft;
  for (const PlotSeries& s : panel.series) {
    if (s.points.empty()) continue;
    const std::string dash = s.roofline ? " stroke-dasharray=\"6,4\"" : "";
    svg << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"2\"" << dash << " points=\"";
    for (const auto& [x, y] : s.points) svg << scale.X(x) << "," << scale.Y(y) << " ";
    svg << "\"/>\n";
    for (const auto& [x, y] : s.points) {
      svg << "<circle cx=\"" << scale.X(x) << "\" cy=\"" << scale.Y(y) << "\" r=\"3\" fill=\"" << s.color
          << "\"><title>" << Escape(s.name) << ": " << Number(y) << " at " << Number(x) << "</title></circle>\n";
    }
    svg << "<line x1=\"" << legend_x << "\" y1=\"" << bottom + 50 << "\" x2=\"" << legend_x + 18 << "\" y2=\""
        << bottom + 50 << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"" << dash << "/>\n<text x=\""
        << legend_x + 22 << "\" y=\"" << bottom + 54 << "\" font-size=\"11\">" << Escape(s.name) << "</text>\n";
    legend_x += 30 + 6.5 * static_cast<double>(s.name.size());
  }
  svg << "</g>\n";
}

bool HasPoints(const PlotPanel& panel) {
  return std::any_of(panel.series.begin(), panel.series.end(), [](const PlotSeries& s) { return !s.points.empty(); });
}

}  // namespace

std::string RenderPlotSvg(const std::string& title, const std::vector<PlotPanel>& panels) {
  std::vector<const PlotPanel*> drawn;
  for (const PlotPanel& panel : panels) {
    if (HasPoints(panel)) drawn.push_back(&panel);
  }
  const double width = kPanelWidth * std::max<size_t>(drawn.size(), 1), height = kTitleHeight + kPanelHeight;
  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"10\" y=\"24\" font-size=\"14\">" << Escape(title) << "</text>\n";
  for (size_t i = 0; i < drawn.size(); ++i) RenderPanel(*drawn[i], kPanelWidth * i, kTitleHeight, svg);
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace dsv4::cli
