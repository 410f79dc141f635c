// Line chart layout and rendering (see line_chart.h). The layout is fixed by the options alone, not
// by the data, so plot_area() can tell tests exactly where series may appear.
#include "report/line_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "report/png.h"

namespace llmopt::report {

namespace {

constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kGrid{225, 225, 225};
constexpr Rgb kText{40, 40, 40};
constexpr int kMinWidth = 200, kMinHeight = 150;

struct Axis {
  double lo = 0, hi = 1;
  std::vector<double> ticks;  // in axis units (log10 of the value on a log axis)
  bool log = false;
};

// Pads a degenerate range so a constant series still gets a real axis (drawn mid-height).
void pad_range(double& lo, double& hi) {
  if (hi > lo) return;
  const double pad = lo != 0 ? std::abs(lo) * 0.05 : 1.0;
  lo -= pad;
  hi += pad;
}

Axis linear_axis(double lo, double hi) {
  pad_range(lo, hi);
  Axis a;
  a.ticks = nice_ticks(lo, hi);
  // Snap the axis to the outer ticks so the frame starts and ends on a labelled value.
  a.lo = std::min(lo, a.ticks.front());
  a.hi = std::max(hi, a.ticks.back());
  return a;
}

// Log axis over whole decades; with at most two decades 2x and 5x ticks are added so a loss curve
// spanning, say, 2..8 still gets several labels.
Axis log_axis(double lo, double hi) {  // lo, hi already log10
  pad_range(lo, hi);
  Axis a;
  a.log = true;
  a.lo = std::floor(lo);
  a.hi = std::ceil(hi);
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  const int decades = static_cast<int>(a.hi - a.lo);
  const int step = std::max(1, (decades + 7) / 8);
  for (int d = static_cast<int>(a.lo); d <= static_cast<int>(a.hi); d += step) {
    a.ticks.push_back(d);
    if (decades <= 2 && d < a.hi) {
      a.ticks.push_back(d + std::log10(2.0));
      a.ticks.push_back(d + std::log10(5.0));
    }
  }
  return a;
}

// Short tick label: %g, with the exponent written "1e6" / "1e-5" rather than "1e+06".
std::string format_tick(double v, const Axis& a) {
  if (a.log) v = std::pow(10.0, v);
  else if (a.ticks.size() >= 2) {
    const double step = a.ticks[1] - a.ticks[0];
    v = std::round(v / step) * step;  // kill 0.30000000000000004-style noise
    if (std::abs(v) < step * 1e-9) v = 0;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  std::string s = buf, out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == 'e') {
      out += 'e';
      size_t j = i + 1;
      if (j < s.size() && (s[j] == '+' || s[j] == '-')) {
        if (s[j] == '-') out += '-';
        ++j;
      }
      while (j + 1 < s.size() && s[j] == '0') ++j;
      out += s.substr(j);
      break;
    }
    out += s[i];
  }
  return out;
}

// Maps an axis value to a pixel offset in [0, span-1]; clamped so wild values cannot overflow int.
int to_pixel(double v, const Axis& a, int span) {
  double t = (v - a.lo) / (a.hi - a.lo);
  if (!std::isfinite(t)) t = 0;
  t = std::clamp(t, -100.0, 100.0);
  return static_cast<int>(std::lround(t * (span - 1)));
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  pad_range(lo, hi);
  const double raw = (hi - lo) / std::max(target, 1);
  if (!std::isfinite(raw) || raw <= 0) return {lo, hi};
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step), last = std::ceil(hi / step);
  std::vector<double> ticks;
  // Multiply rather than accumulate so tick values do not drift.
  for (double k = first; k <= last + 0.5 && ticks.size() < 64; k += 1) ticks.push_back(k * step);
  return ticks;
}

PlotArea plot_area(const ChartOptions& opt) {
  const int w = std::max(opt.width, kMinWidth), h = std::max(opt.height, kMinHeight);
  const int top = opt.title.empty() ? 14 : 36;
  const int bottom = opt.x_label.empty() ? 24 : 40;  // tick labels, then the x label
  const int left = opt.y_label.empty() ? 64 : 80;     // tick labels up to ~9 chars, then y label
  const int right = 20;
  return {left, top, w - left - right, h - top - bottom};
}

Rgb series_color(size_t i) {
  static constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                     {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127}};
  return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

Canvas render_line_chart(const std::vector<Series>& series, const ChartOptions& opt) {
  const int width = std::max(opt.width, kMinWidth), height = std::max(opt.height, kMinHeight);
  const PlotArea pa = plot_area(opt);
  Canvas c(width, height, kWhite);

  // Data ranges over the points that will actually be drawn.
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!opt.log_y || y > 0); };
  auto ty = [&](double y) { return opt.log_y ? std::log10(y) : y; };
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (const Series& s : series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]);
      xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, ty(s.y[i]));
      yhi = std::max(yhi, ty(s.y[i]));
    }
  }
  if (xlo > xhi) xlo = 0, xhi = 1;
  if (ylo > yhi) ylo = 0, yhi = 1;
  const Axis ax = linear_axis(xlo, xhi);
  const Axis ay = opt.log_y ? log_axis(ylo, yhi) : linear_axis(ylo, yhi);
  auto px = [&](double x) { return pa.x + to_pixel(x, ax, pa.w); };
  auto py = [&](double y) { return pa.y + pa.h - 1 - to_pixel(y, ay, pa.h); };

  // Grid, ticks and labels.
  for (double t : ax.ticks) {
    if (t < ax.lo || t > ax.hi) continue;
    const int x = px(t);
    c.line(x, pa.y, x, pa.y + pa.h - 1, kGrid);
    c.line(x, pa.y + pa.h, x, pa.y + pa.h + 4, kBlack);
    const std::string label = format_tick(t, ax);
    c.text(x - Canvas::text_width(label) / 2, pa.y + pa.h + 7, label, kText);
  }
  for (double t : ay.ticks) {
    if (t < ay.lo || t > ay.hi) continue;
    const int y = py(t);
    c.line(pa.x, y, pa.x + pa.w - 1, y, kGrid);
    c.line(pa.x - 5, y, pa.x - 1, y, kBlack);
    const std::string label = format_tick(t, ay);
    c.text(pa.x - 8 - Canvas::text_width(label), y - 3, label, kText);
  }
  c.rect(pa.x - 1, pa.y - 1, pa.w + 2, pa.h + 2, kBlack);  // frame just outside the plot area

  if (!opt.title.empty()) {
    const int scale = Canvas::text_width(opt.title, 2) <= width - 10 ? 2 : 1;
    c.text((width - Canvas::text_width(opt.title, scale)) / 2, 10, opt.title, kBlack, scale);
  }
  if (!opt.x_label.empty())
    c.text(pa.x + (pa.w - Canvas::text_width(opt.x_label)) / 2, pa.y + pa.h + 22, opt.x_label, kText);
  if (!opt.y_label.empty())
    c.text_up(8, pa.y + (pa.h + Canvas::text_width(opt.y_label)) / 2, opt.y_label, kText);

  // Series, clipped to the plot area. Skipped points are bridged: missing values in a log (an
  // eval every N steps) should not break the curve.
  c.set_clip(pa.x, pa.y, pa.w, pa.h);
  for (const Series& s : series) {
    bool have_prev = false;
    int prev_x = 0, prev_y = 0, drawn = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      const int x = px(s.x[i]), y = py(ty(s.y[i]));
      if (have_prev) c.line(prev_x, prev_y, x, y, s.color, 2);
      prev_x = x, prev_y = y, have_prev = true;
      ++drawn;
    }
    if (drawn == 1) c.fill_rect(prev_x - 1, prev_y - 1, 3, 3, s.color);  // a lone point as a dot
  }

  // Legend in the top-right corner of the plot area (still clipped to it).
  std::vector<const Series*> named;
  int text_w = 0;
  for (const Series& s : series) {
    if (s.name.empty()) continue;
    named.push_back(&s);
    text_w = std::max(text_w, Canvas::text_width(s.name));
  }
  if (!named.empty()) {
    const int row = 12, lw = 8 + 20 + 6 + text_w + 8, lh = 6 + row * static_cast<int>(named.size());
    const int lx = pa.x + pa.w - lw - 6, ly = pa.y + 6;
    c.fill_rect(lx, ly, lw, lh, kWhite);
    c.rect(lx, ly, lw, lh, {160, 160, 160});
    for (size_t i = 0; i < named.size(); ++i) {
      const int y = ly + 6 + static_cast<int>(i) * row;
      c.line(lx + 8, y + 3, lx + 28, y + 3, named[i]->color, 2);
      c.text(lx + 34, y, named[i]->name, kText);
    }
  }
  c.reset_clip();
  return c;
}

Status write_line_chart(const std::string& path, const std::vector<Series>& series, const ChartOptions& opt) {
  Canvas c = render_line_chart(series, opt);
  return write_png(path, c.width(), c.height(), c.pixels());
}

}  // namespace llmopt::report
