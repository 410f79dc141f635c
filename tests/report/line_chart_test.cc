// Line charts: where series pixels land, nice ticks, and robustness to awkward data.
#include "report/line_chart.h"

#include <gtest/gtest.h>

#include <cmath>

#include "png_reader.h"
#include "test_util.h"

namespace llmopt::report {
namespace {

constexpr Rgb kChartRed{255, 0, 0};

struct Counts {
  int inside = 0, outside = 0;
};
Counts count_colour(const Canvas& c, const PlotArea& pa, Rgb col) {
  Counts n;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) {
      if (!(c.pixel(x, y) == col)) continue;
      const bool in = x >= pa.x && x < pa.x + pa.w && y >= pa.y && y < pa.y + pa.h;
      (in ? n.inside : n.outside)++;
    }
  return n;
}

ChartOptions labelled() {
  ChartOptions o;
  o.title = "Training loss";
  o.x_label = "step";
  o.y_label = "loss";
  return o;
}

TEST(ReportLineChartTest, RedSeriesOnlyInsidePlotArea) {
  Series s{"loss", {}, {}, kChartRed};
  for (int i = 0; i <= 100; ++i) {
    s.x.push_back(i * 10);
    s.y.push_back(10.0 * std::exp(-i / 30.0) + 1.5);
  }
  const ChartOptions opt = labelled();
  Canvas c = render_line_chart({s}, opt);
  EXPECT_EQ(c.width(), 800);
  EXPECT_EQ(c.height(), 500);
  const PlotArea pa = plot_area(opt);
  ASSERT_GT(pa.w, 100);
  ASSERT_GT(pa.h, 100);
  Counts n = count_colour(c, pa, kChartRed);
  EXPECT_GT(n.inside, pa.w);  // a continuous curve spans the width
  EXPECT_EQ(n.outside, 0);
  // Axes, labels and title are drawn too: dark pixels outside the plot area.
  int dark_outside = 0;
  for (int y = 0; y < pa.y; ++y)
    for (int x = 0; x < c.width(); ++x) dark_outside += c.pixel(x, y).r < 100;
  EXPECT_GT(dark_outside, 50) << "title missing";
}

TEST(ReportLineChartTest, EndpointsLandOnAxisCorners) {
  // x and y both 0..10 are exact tick ranges, so the first point is the bottom-left corner of the
  // plot area and the last the top-right one. Checked through the PNG file as Python reads it.
  LLMOPT_REQUIRE_PYTHON();
  Series s{"", {0, 10}, {0, 10}, kChartRed};
  ChartOptions opt;
  const PlotArea pa = plot_area(opt);
  const std::string path = test::temp_dir() + "/chart.png";
  ASSERT_TRUE(write_line_chart(path, {s}, opt).ok());
  auto d = test::decode_png_with_python(
      path, {{pa.x, pa.y + pa.h - 1}, {pa.x + pa.w - 1, pa.y}, {pa.x + pa.w / 2, pa.y + pa.h / 2}, {2, 2}});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.width, 800);
  EXPECT_EQ(d.height, 500);
  const std::vector<int> red = {255, 0, 0}, white = {255, 255, 255};
  EXPECT_EQ(d.rgb[0], red);
  EXPECT_EQ(d.rgb[1], red);
  EXPECT_EQ(d.rgb[2], red);  // the diagonal passes through the centre
  EXPECT_EQ(d.rgb[3], white);  // background in the corner
}

TEST(ReportLineChartTest, NiceTicks) {
  auto is_nice_step = [](double step) {
    const double m = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    return std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9;
  };
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {0, 1}, {1.8, 10.3}, {0, 1000}, {-3, 7}, {1e-5, 3e-5}, {12345, 98765}, {5, 5}}) {
    auto t = nice_ticks(lo, hi);
    ASSERT_GE(t.size(), 3u) << lo << ".." << hi;
    EXPECT_LE(t.size(), 12u) << lo << ".." << hi;
    EXPECT_LE(t.front(), lo);
    EXPECT_GE(t.back(), hi);
    const double step = t[1] - t[0];
    EXPECT_TRUE(is_nice_step(step)) << step;
    for (size_t i = 1; i < t.size(); ++i) EXPECT_NEAR(t[i] - t[i - 1], step, step * 1e-6);
  }
  auto t = nice_ticks(0, 1);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t[1], 0.2);
  EXPECT_DOUBLE_EQ(t[5], 1.0);
}

TEST(ReportLineChartTest, AwkwardInputsDoNotCrash) {
  const double nan = std::nan(""), inf = INFINITY;
  const ChartOptions opt = labelled();
  const PlotArea pa = plot_area(opt);
  // Nothing at all, an empty series, all-NaN, mismatched lengths, infinities.
  for (const auto& series : std::vector<std::vector<Series>>{
           {},
           {Series{"empty", {}, {}, kChartRed}},
           {Series{"nan", {nan, nan}, {nan, 1}, kChartRed}},
           {Series{"ragged", {1, 2, 3, 4}, {5, 6}, kChartRed}},
           {Series{"inf", {1, 2, inf, 3}, {1, -inf, 2, 3}, kChartRed}}}) {
    Canvas c = render_line_chart(series, opt);
    EXPECT_EQ(count_colour(c, pa, kChartRed).outside, 0);
  }
  // A tiny requested size is raised to the minimum instead of breaking the layout.
  ChartOptions tiny = opt;
  tiny.width = 3;
  tiny.height = -7;
  Canvas c = render_line_chart({Series{"a", {1, 2}, {3, 4}, kChartRed}}, tiny);
  EXPECT_GE(c.width(), 200);
  EXPECT_GE(c.height(), 150);
  EXPECT_EQ(count_colour(c, plot_area(tiny), kChartRed).outside, 0);
}

TEST(ReportLineChartTest, SinglePointAndConstantSeriesAreVisible) {
  const ChartOptions opt;
  const PlotArea pa = plot_area(opt);
  Canvas one = render_line_chart({Series{"p", {5}, {3}, kChartRed}}, opt);
  Counts n = count_colour(one, pa, kChartRed);
  EXPECT_GT(n.inside, 0);
  EXPECT_EQ(n.outside, 0);

  Canvas flat = render_line_chart({Series{"", {0, 1, 2, 3}, {2.5, 2.5, 2.5, 2.5}, kChartRed}}, opt);
  n = count_colour(flat, pa, kChartRed);
  EXPECT_GT(n.inside, pa.w / 2);
  // The padded range puts the line away from the frame, near the middle.
  int top_row = pa.y + pa.h, bottom_row = -1;
  for (int y = pa.y; y < pa.y + pa.h; ++y)
    for (int x = pa.x; x < pa.x + pa.w; ++x)
      if (flat.pixel(x, y) == kChartRed) top_row = std::min(top_row, y), bottom_row = std::max(bottom_row, y);
  EXPECT_GT(top_row, pa.y + pa.h / 4);
  EXPECT_LT(bottom_row, pa.y + 3 * pa.h / 4);
}

TEST(ReportLineChartTest, LogAxisSkipsNonPositiveValues) {
  ChartOptions opt = labelled();
  opt.log_y = true;
  const PlotArea pa = plot_area(opt);
  Series s{"loss", {0, 1, 2, 3, 4}, {100, 10, 0, -1, 1}, kChartRed};
  Canvas c = render_line_chart({s}, opt);
  Counts n = count_colour(c, pa, kChartRed);
  EXPECT_GT(n.inside, 0);
  EXPECT_EQ(n.outside, 0);
  // 100 -> 1 over two decades: the first point is at the top, the last at the bottom.
  EXPECT_EQ(c.pixel(pa.x, pa.y), kChartRed);
  EXPECT_EQ(c.pixel(pa.x + pa.w - 1, pa.y + pa.h - 1), kChartRed);
}

TEST(ReportLineChartTest, LegendShowsEachNamedSeries) {
  const ChartOptions opt;
  const PlotArea pa = plot_area(opt);
  const Rgb blue{0, 0, 255};
  // Both curves fall from the top left to the bottom right, so colour in the top right corner can
  // only come from the legend.
  Canvas c = render_line_chart({Series{"train", {0, 10}, {10, 0}, kChartRed}, Series{"heldout", {0, 10}, {9, 1}, blue}}, opt);
  int red = 0, blu = 0;
  for (int y = pa.y; y < pa.y + 40; ++y)
    for (int x = pa.x + pa.w - 150; x < pa.x + pa.w; ++x) red += c.pixel(x, y) == kChartRed, blu += c.pixel(x, y) == blue;
  EXPECT_GT(red, 10);
  EXPECT_GT(blu, 10);
}

}  // namespace
}  // namespace llmopt::report
