// PNG writer (see png.h). Stored deflate blocks make files about as large as the raw pixels, which
// is fine for charts of a few hundred kilobytes and keeps the encoder short and easy to verify.
#include "report/png.h"

#include <algorithm>
#include <array>
#include <fstream>

namespace llmopt::report {

namespace {

// Table for the reflected polynomial 0xEDB88320, built once on first use.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  return table;
}

void put_u32be(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  out.push_back(static_cast<uint8_t>(v >> 16));
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

// A chunk is length, type, data, then the CRC over type and data (not the length).
void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32be(out, static_cast<uint32_t>(data.size()));
  size_t type_pos = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32be(out, crc32(out.data() + type_pos, out.size() - type_pos));
}

// zlib stream: 2-byte header, stored deflate blocks, Adler-32 of the uncompressed data.
std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> z;
  z.reserve(raw.size() + raw.size() / 65535 * 5 + 16);
  // CMF 0x78: deflate, 32K window. FLG 0x01 makes (CMF*256 + FLG) a multiple of 31, as required.
  z.push_back(0x78);
  z.push_back(0x01);
  size_t pos = 0;
  do {  // at least one block, so an empty input still yields a valid (final) block
    size_t len = std::min<size_t>(65535, raw.size() - pos);
    bool last = pos + len == raw.size();
    z.push_back(last ? 1 : 0);  // BFINAL bit, BTYPE=00 (stored); the rest of the byte is padding
    z.push_back(static_cast<uint8_t>(len));
    z.push_back(static_cast<uint8_t>(len >> 8));
    z.push_back(static_cast<uint8_t>(~len));
    z.push_back(static_cast<uint8_t>(~len >> 8));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
             raw.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
  } while (pos < raw.size());
  put_u32be(z, adler32(raw.data(), raw.size()));
  return z;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  const auto& t = crc_table();
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t adler32(const uint8_t* data, size_t n, uint32_t adler) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  // 5552 is the largest run for which the sums cannot overflow 32 bits before the modulo.
  while (n > 0) {
    size_t run = std::min<size_t>(n, 5552);
    n -= run;
    for (size_t i = 0; i < run; ++i) {
      a += *data++;
      b += a;
    }
    a %= kMod;
    b %= kMod;
  }
  return (b << 16) | a;
}

Result<std::vector<uint8_t>> encode_png(int width, int height, const std::vector<uint8_t>& rgb) {
  if (width <= 0 || height <= 0) return error("png: image size must be positive");
  if (width > (1 << 24) || height > (1 << 24)) return error("png: image too large");
  const size_t row = static_cast<size_t>(width) * 3;
  if (rgb.size() != row * static_cast<size_t>(height)) {
    return error("png: pixel buffer has " + std::to_string(rgb.size()) + " bytes, expected " +
                 std::to_string(row * static_cast<size_t>(height)));
  }
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32be(ihdr, static_cast<uint32_t>(width));
  put_u32be(ihdr, static_cast<uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // bit depth 8, RGB, deflate, adaptive filters, no interlace
  put_chunk(out, "IHDR", ihdr);

  // Each scanline starts with its filter type; 0 (None) since we do not compress anyway.
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * static_cast<size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    auto begin = rgb.begin() + static_cast<std::ptrdiff_t>(row * static_cast<size_t>(y));
    raw.insert(raw.end(), begin, begin + static_cast<std::ptrdiff_t>(row));
  }
  put_chunk(out, "IDAT", zlib_stored(raw));
  put_chunk(out, "IEND", {});
  return out;
}

Status write_png(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb) {
  LLMOPT_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, encode_png(width, height, rgb));
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return error(path + ": cannot open for writing");
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return error(path + ": write failed");
  return ok_status();
}

}  // namespace llmopt::report
