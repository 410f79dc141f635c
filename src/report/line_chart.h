// Line charts (loss curves and the like) rendered onto a Canvas and saved as PNG.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "report/canvas.h"

namespace llmopt::report {

struct Series {
  std::string name;  // shown in the legend; series with empty names are left out of it
  std::vector<double> x, y;  // paired by index; extra values in the longer one are ignored
  Rgb color;
};

struct ChartOptions {
  std::string title, x_label, y_label;
  int width = 800, height = 500;  // raised to at least 200x150 so the layout fits
  bool log_y = false;  // non-positive y values are skipped on a log axis
};

// The rectangle (in canvas pixels) inside the axes where series are drawn. Nothing a series draws
// lands outside it, which tests rely on.
struct PlotArea {
  int x = 0, y = 0, w = 0, h = 0;
};
PlotArea plot_area(const ChartOptions& opt);

// A distinguishable colour for the i-th series (cycles after a handful).
Rgb series_color(size_t i);

// Never fails: non-finite points are skipped, empty input gives empty axes, and a degenerate
// (single-valued) range is padded.
Canvas render_line_chart(const std::vector<Series>& series, const ChartOptions& opt);
Status write_line_chart(const std::string& path, const std::vector<Series>& series, const ChartOptions& opt);

// "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about `target` of them.
// Exposed for tests.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

}  // namespace llmopt::report
