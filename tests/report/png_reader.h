// An independent PNG check for the report tests: Python's standard library (zlib + struct) parses
// the file, verifies every chunk CRC, inflates IDAT, undoes all five PNG filters and prints pixels.
// None of our own encoder code is involved, so a bug there cannot hide itself.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace llmopt::test {

// python3 with the standard library (no numpy needed); empty when there is none.
std::string stdlib_python();

struct DecodedPng {
  bool ok = false;
  std::string error;  // python's complaint when !ok
  int width = 0, height = 0;
  std::vector<std::vector<int>> rgb;  // one {r, g, b} per requested coordinate
  std::vector<uint8_t> pixels;        // every pixel, row-major RGB (decode_png_pixels_with_python only)
};
DecodedPng decode_png_with_python(const std::string& png_path, const std::vector<std::pair<int, int>>& xy);
// Decodes the whole image, so tests can compare it byte for byte with what was encoded.
DecodedPng decode_png_pixels_with_python(const std::string& png_path);

}  // namespace llmopt::test

// Skips when python3 is absent.
#define LLMOPT_REQUIRE_PYTHON()                                                         \
  do {                                                                                \
    if (::llmopt::test::stdlib_python().empty()) GTEST_SKIP() << "python3 not found"; \
  } while (0)
