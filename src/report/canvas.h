// A small RGB raster for drawing charts: pixels, lines, rectangles and a built-in 5x7 bitmap font.
// Everything is clipped, so callers can draw partly (or wholly) off-canvas without checks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmopt::report {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb&) const = default;
};

class Canvas {
 public:
  Canvas(int width, int height, Rgb background = {255, 255, 255});

  int width() const { return width_; }
  int height() const { return height_; }
  // Row-major RGB8 bytes, ready for encode_png / write_png.
  const std::vector<uint8_t>& pixels() const { return rgb_; }

  // Restricts later drawing to a rectangle (intersected with the canvas); reset_clip() undoes it.
  void set_clip(int x, int y, int w, int h);
  void reset_clip();

  void fill(Rgb c);  // ignores the clip: it is "clear the whole canvas"
  void set_pixel(int x, int y, Rgb c);
  Rgb pixel(int x, int y) const;  // black outside the canvas
  // Bresenham line including both ends; thickness 2 also paints the right and lower neighbours.
  void line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  void rect(int x, int y, int w, int h, Rgb c);       // 1-pixel outline
  void fill_rect(int x, int y, int w, int h, Rgb c);  // solid

  // Text in the 5x7 font, each glyph in a 6-pixel cell (one column of spacing), scaled by `scale`.
  // (x, y) is the top-left corner; characters without a glyph draw as '?'.
  void text(int x, int y, std::string_view s, Rgb c, int scale = 1);
  // The same text turned 90 degrees counter-clockwise (reads bottom to top), starting at its
  // bottom-left corner (x, y) — used for the y-axis label.
  void text_up(int x, int y, std::string_view s, Rgb c, int scale = 1);
  static int text_width(std::string_view s, int scale = 1);
  static int text_height(int scale = 1) { return 7 * scale; }

 private:
  int width_, height_;
  int clip_x0_ = 0, clip_y0_ = 0, clip_x1_ = 0, clip_y1_ = 0;  // half-open
  std::vector<uint8_t> rgb_;
};

}  // namespace llmopt::report
