// PNG encoder: checksums against their published check values and Python's zlib, and whole files
// decoded by Python's standard library (png_reader.h).
#include "report/png.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "png_reader.h"
#include "report/line_chart.h"
#include "test_util.h"

namespace llmopt::report {
namespace {

const uint8_t* bytes(const char* s) { return reinterpret_cast<const uint8_t*>(s); }

TEST(ReportPngTest, Crc32CheckValue) {
  // The standard "check" value of CRC-32/ISO-HDLC.
  EXPECT_EQ(crc32(bytes("123456789"), 9), 0xCBF43926u);
  EXPECT_EQ(crc32(nullptr, 0), 0u);
  // Incremental use gives the same answer as one call.
  EXPECT_EQ(crc32(bytes("6789"), 4, crc32(bytes("12345"), 5)), 0xCBF43926u);
}

TEST(ReportPngTest, Adler32KnownValue) {
  EXPECT_EQ(adler32(bytes("Wikipedia"), 9), 0x11E60398u);  // the worked example on Wikipedia
  EXPECT_EQ(adler32(nullptr, 0), 1u);
}

TEST(ReportPngTest, ChecksumsMatchPythonZlibOnLongInput) {
  LLMOPT_REQUIRE_PYTHON();
  // Long enough to exercise Adler-32's deferred modulo (runs of 5552 bytes) many times over.
  std::vector<uint8_t> data(200000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(255 - (i * 7) % 251);
  auto r = test::run_command(test::stdlib_python() +
                             " -c 'import zlib; d = bytes(255 - (i * 7) % 251 for i in range(200000)); "
                             "print(zlib.crc32(d), zlib.adler32(d))'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  unsigned long long want_crc = 0, want_adler = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "%llu %llu", &want_crc, &want_adler), 2) << r.out;
  EXPECT_EQ(crc32(data.data(), data.size()), want_crc);
  EXPECT_EQ(adler32(data.data(), data.size()), want_adler);
}

TEST(ReportPngTest, RejectsBadArguments) {
  EXPECT_FALSE(encode_png(0, 5, {}).ok());
  EXPECT_FALSE(encode_png(2, 2, std::vector<uint8_t>(11)).ok());
  auto st = write_png("/nonexistent-dir/x.png", 1, 1, {1, 2, 3});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent-dir/x.png"), std::string::npos) << st.message();
}

TEST(ReportPngTest, LayoutOfSmallFile) {
  auto png = encode_png(1, 1, {10, 20, 30});
  ASSERT_TRUE(png.ok()) << png.status().message();
  const std::vector<uint8_t>& b = *png;
  ASSERT_GT(b.size(), 33u);
  EXPECT_EQ(std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8), 0);
  EXPECT_EQ(std::memcmp(b.data() + 12, "IHDR", 4), 0);
  EXPECT_EQ(std::memcmp(b.data() + b.size() - 8, "IEND", 4), 0);
}

// A gradient large enough to exercise long match distances and every filter choice.
TEST(ReportPngTest, PythonDecodesMultiBlockImage) {
  LLMOPT_REQUIRE_PYTHON();
  const int w = 300, h = 250;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x);
      p[1] = static_cast<uint8_t>(y);
      p[2] = static_cast<uint8_t>(x * y);
    }
  const std::string path = test::temp_dir() + "/grad.png";
  ASSERT_TRUE(write_png(path, w, h, rgb).ok());
  const std::vector<std::pair<int, int>> xy = {{0, 0}, {299, 0}, {0, 249}, {299, 249}, {123, 77}, {256, 200}};
  auto d = test::decode_png_with_python(path, xy);
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.width, w);
  EXPECT_EQ(d.height, h);
  for (size_t i = 0; i < xy.size(); ++i) {
    auto [x, y] = xy[i];
    EXPECT_EQ(d.rgb[i], (std::vector<int>{x & 255, y & 255, (x * y) & 255})) << x << "," << y;
  }
}

TEST(ReportPngTest, PythonDecodesOnePixel) {
  LLMOPT_REQUIRE_PYTHON();
  const std::string path = test::temp_dir() + "/one.png";
  ASSERT_TRUE(write_png(path, 1, 1, {200, 100, 50}).ok());
  auto d = test::decode_png_with_python(path, {{0, 0}});
  ASSERT_TRUE(d.ok) << d.error;
  EXPECT_EQ(d.rgb[0], (std::vector<int>{200, 100, 50}));
}


// Encodes, writes, decodes every pixel with Python and compares byte for byte; returns the file size.
size_t roundtrip_exact(int w, int h, const std::vector<uint8_t>& rgb, const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name;
  auto png = encode_png(w, h, rgb);
  EXPECT_TRUE(png.ok()) << png.status().message();
  if (!png.ok()) return 0;
  EXPECT_TRUE(write_png(path, w, h, rgb).ok());
  auto d = test::decode_png_pixels_with_python(path);
  EXPECT_TRUE(d.ok) << name << ": " << d.error;
  EXPECT_EQ(d.width, w) << name;
  EXPECT_EQ(d.height, h) << name;
  EXPECT_TRUE(d.pixels == rgb) << name << ": decoded pixels differ";
  return png->size();
}

std::vector<uint8_t> noise(int w, int h, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3);
  for (auto& v : rgb) v = static_cast<uint8_t>(gen());
  return rgb;
}

TEST(ReportPngTest, LargeChartCompressesAndDecodesExactly) {
  LLMOPT_REQUIRE_PYTHON();
  std::vector<Series> series;
  for (int k = 0; k < 4; ++k) {
    Series s{"series " + std::to_string(k), {}, {}, series_color(static_cast<size_t>(k))};
    for (int i = 0; i <= 500; ++i) {
      s.x.push_back(i);
      s.y.push_back((k + 1) * 3.0 * std::exp(-i / (40.0 + 30 * k)) + 1.0 + 0.2 * std::sin(i * (0.1 + 0.05 * k)));
    }
    series.push_back(s);
  }
  ChartOptions opt;
  opt.title = "Training loss";
  opt.x_label = "step";
  opt.y_label = "loss";
  Canvas c = render_line_chart(series, opt);
  ASSERT_EQ(c.width(), 800);
  ASSERT_EQ(c.height(), 500);
  const size_t size = roundtrip_exact(c.width(), c.height(), c.pixels(), "chart.png");
  EXPECT_GT(size, 0u);
  EXPECT_LT(size, 100u * 1024) << "raw pixels are " << c.pixels().size() << " bytes";
}

TEST(ReportPngTest, NoiseDecodesExactly) {
  LLMOPT_REQUIRE_PYTHON();
  const int w = 257, h = 131;  // incompressible, and not a multiple of anything convenient
  auto rgb = noise(w, h, 12345);
  const size_t size = roundtrip_exact(w, h, rgb, "noise.png");
  // Literals cost 8 or 9 bits in the fixed code, so noise may grow by at most about 1/8.
  EXPECT_LT(size, rgb.size() * 9 / 8 + 1024);
}

TEST(ReportPngTest, ThinImagesDecodeExactly) {
  LLMOPT_REQUIRE_PYTHON();
  roundtrip_exact(1, 1, {200, 100, 50}, "thin_1x1.png");
  roundtrip_exact(1, 300, noise(1, 300, 1), "thin_1x300_noise.png");
  roundtrip_exact(300, 1, noise(300, 1, 2), "thin_300x1_noise.png");
  // Width 1 and height 1 with long runs: matches at distance 4 (one scanline) and 3 (one pixel).
  roundtrip_exact(1, 2000, std::vector<uint8_t>(6000, 255), "thin_1x2000_white.png");
  roundtrip_exact(2000, 1, std::vector<uint8_t>(6000, 255), "thin_2000x1_white.png");
  std::vector<uint8_t> stripes(3 * 1000);
  for (size_t i = 0; i < stripes.size(); ++i) stripes[i] = static_cast<uint8_t>((i / 3) % 7 == 0 ? 0 : 255);
  roundtrip_exact(1, 1000, stripes, "thin_1x1000_stripes.png");
  roundtrip_exact(1000, 1, stripes, "thin_1000x1_stripes.png");
}

// Long runs, short runs, repeated rows and the window boundary: matches of every length and at
// distances up to and past 32 KiB, all of which must come back unchanged.
TEST(ReportPngTest, MixedContentDecodesExactly) {
  LLMOPT_REQUIRE_PYTHON();
  const int w = 600, h = 120;
  std::mt19937 gen(7);
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3, 255);
  std::vector<uint8_t> pattern = noise(40, 1, 9);
  for (int y = 0; y < h; ++y) {
    uint8_t* row = &rgb[static_cast<size_t>(y) * w * 3];
    if (y % 5 == 0) {
      for (int x = 0; x < w * 3; ++x) row[x] = static_cast<uint8_t>(gen() % 4 == 0 ? gen() : 255);
    } else if (y % 5 == 1) {
      for (int x = 0; x < w * 3; ++x) row[x] = pattern[static_cast<size_t>(x) % pattern.size()];
    } else {
      const int run = static_cast<int>(gen() % 300);
      for (int x = run; x < run + 50 && x < w; ++x) row[x * 3] = static_cast<uint8_t>(y);
    }
  }
  roundtrip_exact(w, h, rgb, "mixed.png");
}

}  // namespace
}  // namespace llmopt::report
