// Canvas primitives: exact pixels for lines and clipping, and full coverage of the font.
#include "report/canvas.h"

#include <gtest/gtest.h>

namespace llmopt::report {
namespace {

constexpr Rgb kWhite{255, 255, 255}, kRed{255, 0, 0};

int count(const Canvas& c, Rgb col, int x0 = 0, int y0 = 0, int x1 = -1, int y1 = -1) {
  if (x1 < 0) x1 = c.width();
  if (y1 < 0) y1 = c.height();
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) n += c.pixel(x, y) == col;
  return n;
}

TEST(ReportCanvasTest, PixelsAndBounds) {
  Canvas c(10, 8);
  EXPECT_EQ(c.pixels().size(), 10u * 8u * 3u);
  EXPECT_EQ(count(c, kWhite), 80);
  c.set_pixel(3, 4, kRed);
  c.set_pixel(-1, 0, kRed);  // off-canvas: ignored
  c.set_pixel(10, 8, kRed);
  EXPECT_EQ(c.pixel(3, 4), kRed);
  EXPECT_EQ(count(c, kRed), 1);
  EXPECT_EQ(c.pixels()[(4 * 10 + 3) * 3 + 1], 0);  // row-major RGB layout
  c.fill({1, 2, 3});
  EXPECT_EQ(count(c, {1, 2, 3}), 80);
}

TEST(ReportCanvasTest, LinesIncludeBothEnds) {
  Canvas c(20, 20);
  c.line(2, 5, 12, 5, kRed);
  EXPECT_EQ(count(c, kRed), 11);
  c.fill(kWhite);
  c.line(15, 15, 3, 3, kRed);  // drawn backwards: still the exact diagonal
  for (int i = 3; i <= 15; ++i) EXPECT_EQ(c.pixel(i, i), kRed) << i;
  EXPECT_EQ(count(c, kRed), 13);
  c.fill(kWhite);
  c.line(0, 0, 9, 3, kRed);  // shallow slope: one pixel per column
  EXPECT_EQ(count(c, kRed), 10);
  EXPECT_EQ(c.pixel(0, 0), kRed);
  EXPECT_EQ(c.pixel(9, 3), kRed);
  c.fill(kWhite);
  c.line(5, 5, 5, 5, kRed, 2);  // a point at thickness 2
  EXPECT_EQ(count(c, kRed), 3);
}

TEST(ReportCanvasTest, ClipLimitsEverything) {
  Canvas c(30, 30);
  c.set_clip(10, 10, 5, 5);
  c.line(-100, 12, 100, 12, kRed, 2);
  c.fill_rect(-5, -5, 100, 100, {0, 0, 255});
  c.text(0, 0, "ABC", kRed);
  EXPECT_EQ(count(c, kWhite), 30 * 30 - 25);
  c.reset_clip();
  c.set_pixel(0, 0, kRed);
  EXPECT_EQ(c.pixel(0, 0), kRed);
}

TEST(ReportCanvasTest, RectOutline) {
  Canvas c(10, 10);
  c.rect(1, 1, 4, 3, kRed);
  EXPECT_EQ(count(c, kRed), 10);  // perimeter of a 4x3 box
  EXPECT_EQ(c.pixel(2, 2), kWhite);
}

TEST(ReportCanvasTest, TextStaysInItsBox) {
  Canvas c(100, 40);
  EXPECT_EQ(Canvas::text_width("ab"), 11);
  EXPECT_EQ(Canvas::text_width("ab", 2), 22);
  EXPECT_EQ(Canvas::text_width(""), 0);
  c.text(10, 5, "Loss 1e-3", kRed);
  const int w = Canvas::text_width("Loss 1e-3");
  EXPECT_GT(count(c, kRed, 10, 5, 10 + w, 12), 20);
  EXPECT_EQ(count(c, kRed), count(c, kRed, 10, 5, 10 + w, 12));
  c.fill(kWhite);
  c.text(3, 3, "8", kRed, 3);  // scaled: 3x3 blocks
  EXPECT_EQ(count(c, kRed) % 9, 0);
  EXPECT_GT(count(c, kRed), 0);
}

TEST(ReportCanvasTest, VerticalTextIsRotated) {
  Canvas a(20, 40), b(20, 40);
  a.text_up(2, 30, "L", kRed);  // "L" turned CCW: its long stem becomes a horizontal bar at the left
  b.text(0, 0, "L", kRed);
  EXPECT_EQ(count(a, kRed), count(b, kRed));
  // The glyph occupies 7 columns (its rows) and 5 rows (its columns) above y=30.
  EXPECT_EQ(count(a, kRed, 2, 25, 9, 30), count(a, kRed));
}

TEST(ReportCanvasTest, EveryRequiredCharacterHasItsOwnGlyph) {
  std::string chars = "0123456789.-+:%()/_, ";  // 'e' comes with a-z
  for (char ch = 'A'; ch <= 'Z'; ++ch) chars += ch;
  for (char ch = 'a'; ch <= 'z'; ++ch) chars += ch;
  Canvas unknown(6, 7);
  unknown.text(0, 0, "?", kRed);
  std::vector<std::vector<uint8_t>> seen;
  for (char ch : chars) {
    Canvas c(6, 7);
    c.text(0, 0, std::string(1, ch), kRed);
    EXPECT_FALSE(c.pixels() == unknown.pixels()) << "no glyph for '" << ch << "'";
    if (ch != ' ') {
      EXPECT_GT(count(c, kRed), 0) << ch;
    }
    for (const auto& s : seen) EXPECT_FALSE(s == c.pixels()) << "glyph for '" << ch << "' duplicates another";
    seen.push_back(c.pixels());
  }
}

}  // namespace
}  // namespace llmopt::report
