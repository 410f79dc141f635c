// PNG encoder: checksums against their published check values and Python's zlib, and whole files
// decoded by Python's standard library (png_reader.h).
#include "report/png.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "png_reader.h"
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

// A gradient large enough that IDAT needs several 65535-byte stored blocks.
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

}  // namespace
}  // namespace llmopt::report
