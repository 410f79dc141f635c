// PNG writer (see png.h): per-scanline filter choice, then deflate with fixed Huffman codes and
// greedy LZ77 matching. Charts are mostly flat colour, so this shrinks them by one to two orders of
// magnitude while keeping the encoder short and easy to verify.
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

// Deflate (RFC 1951) with the fixed Huffman codes of section 3.2.6 and greedy LZ77 matching.
// Fixed codes cost nothing to describe, and charts (long runs of identical pixels, rows that repeat
// the row above) are dominated by matches, so dynamic codes would gain comparatively little.

// Writes bits LSB-first, the order deflate packs every field into bytes.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  // The low n bits of v (n <= 32), least significant first: headers and extra bits.
  void put(uint32_t v, int n) {
    acc_ |= static_cast<uint64_t>(v & ((n == 32) ? 0xFFFFFFFFu : ((1u << n) - 1))) << bits_;
    bits_ += n;
    while (bits_ >= 8) {
      out_.push_back(static_cast<uint8_t>(acc_));
      acc_ >>= 8;
      bits_ -= 8;
    }
  }
  // A Huffman code of n bits, most significant bit first (RFC 1951 section 3.1.1).
  void put_code(uint32_t code, int n) {
    uint32_t rev = 0;
    for (int i = 0; i < n; ++i) rev |= ((code >> i) & 1u) << (n - 1 - i);
    put(rev, n);
  }
  // Pads the last partial byte with zero bits.
  void flush() {
    if (bits_ > 0) out_.push_back(static_cast<uint8_t>(acc_));
    acc_ = 0;
    bits_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint64_t acc_ = 0;
  int bits_ = 0;
};

// Literal/length symbol 0..287 in the fixed code.
void put_litlen(BitWriter& bw, int sym) {
  if (sym < 144) bw.put_code(0x30 + sym, 8);             // 00110000 .. 10111111
  else if (sym < 256) bw.put_code(0x190 + sym - 144, 9);  // 110010000 .. 111111111
  else if (sym < 280) bw.put_code(sym - 256, 7);          // 0000000 .. 0010111
  else bw.put_code(0xC0 + sym - 280, 8);                  // 11000000 .. 11000111
}

constexpr std::array<uint16_t, 29> kLenBase = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                               31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
constexpr std::array<uint8_t, 29> kLenExtra = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                               2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
constexpr std::array<uint16_t, 30> kDistBase = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                                33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                                1025, 1537, 2049, 3073, 4097, 6145,  8193,  12289, 16385, 24577};
constexpr std::array<uint8_t, 30> kDistExtra = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                                6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

// Length 3..258 and distance 1..32768 as codes plus extra bits.
void put_match(BitWriter& bw, int len, int dist) {
  // Largest base <= value; the tables are sorted, so search from the top.
  int lc = static_cast<int>(kLenBase.size()) - 1;
  while (kLenBase[static_cast<size_t>(lc)] > len) --lc;
  put_litlen(bw, 257 + lc);
  bw.put(static_cast<uint32_t>(len - kLenBase[static_cast<size_t>(lc)]), kLenExtra[static_cast<size_t>(lc)]);
  int dc = static_cast<int>(kDistBase.size()) - 1;
  while (kDistBase[static_cast<size_t>(dc)] > dist) --dc;
  bw.put_code(static_cast<uint32_t>(dc), 5);
  bw.put(static_cast<uint32_t>(dist - kDistBase[static_cast<size_t>(dc)]), kDistExtra[static_cast<size_t>(dc)]);
}

// One final fixed-Huffman block holding all of `raw` (such blocks have no size limit).
void deflate_fixed(const std::vector<uint8_t>& raw, std::vector<uint8_t>& out) {
  constexpr int kWindow = 32768, kMinMatch = 3, kMaxMatch = 258, kMaxChain = 48;
  constexpr int kHashBits = 15;
  const uint8_t* d = raw.data();
  const size_t n = raw.size();
  std::vector<int32_t> head(size_t{1} << kHashBits, -1);
  std::vector<int32_t> prev(kWindow, -1);  // previous position with the same hash, by pos % window
  auto hash = [d](size_t p) {
    uint32_t v = (uint32_t{d[p]} << 16) | (uint32_t{d[p + 1]} << 8) | d[p + 2];
    return (v * 2654435761u) >> (32 - kHashBits);
  };
  auto insert = [&](size_t p) {
    if (p + kMinMatch > n) return;
    uint32_t h = hash(p);
    prev[p % kWindow] = head[h];
    head[h] = static_cast<int32_t>(p);
  };

  BitWriter bw(out);
  bw.put(1, 1);  // BFINAL
  bw.put(1, 2);  // BTYPE = 01, fixed Huffman codes
  size_t pos = 0;
  while (pos < n) {
    int best_len = 0, best_dist = 0;
    if (pos + kMinMatch <= n) {
      const int max_len = static_cast<int>(std::min<size_t>(kMaxMatch, n - pos));
      int32_t cand = head[hash(pos)];
      for (int chain = 0; cand >= 0 && chain < kMaxChain; ++chain) {
        const size_t c = static_cast<size_t>(cand);
        const size_t dist = pos - c;
        if (dist > static_cast<size_t>(kWindow)) break;
        // Quick reject: a longer match must agree at index best_len.
        if (d[c + static_cast<size_t>(best_len)] == d[pos + static_cast<size_t>(best_len)] || best_len == 0) {
          int len = 0;
          while (len < max_len && d[c + static_cast<size_t>(len)] == d[pos + static_cast<size_t>(len)]) ++len;
          if (len > best_len) {
            best_len = len;
            best_dist = static_cast<int>(dist);
            if (len == max_len) break;
          }
        }
        const int32_t next = prev[c % kWindow];
        if (next >= cand) break;  // slot overwritten by a newer position: the chain has left the window
        cand = next;
      }
    }
    if (best_len >= kMinMatch) {
      put_match(bw, best_len, best_dist);
      for (int i = 0; i < best_len; ++i) insert(pos + static_cast<size_t>(i));
      pos += static_cast<size_t>(best_len);
    } else {
      put_litlen(bw, d[pos]);
      insert(pos);
      ++pos;
    }
  }
  put_litlen(bw, 256);  // end of block
  bw.flush();
}

// zlib stream: 2-byte header, one compressed deflate block, Adler-32 of the uncompressed data.
std::vector<uint8_t> zlib_compress(const std::vector<uint8_t>& raw) {
  std::vector<uint8_t> z;
  z.reserve(raw.size() / 8 + 64);
  // CMF 0x78: deflate, 32K window. FLG 0x01 makes (CMF*256 + FLG) a multiple of 31, as required.
  z.push_back(0x78);
  z.push_back(0x01);
  deflate_fixed(raw, z);
  put_u32be(z, adler32(raw.data(), raw.size()));
  return z;
}

// Sum of the filtered bytes read as signed values, the usual "minimum sum of absolute differences"
// heuristic for picking a filter per scanline.
uint64_t filter_cost(const std::vector<uint8_t>& line) {
  uint64_t s = 0;
  for (uint8_t v : line) s += v < 128 ? v : 256u - v;
  return s;
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

  // Each scanline starts with its filter type: None (0), Sub (1) or Up (2), whichever gives the
  // smallest sum of absolute (signed) filtered bytes.
  std::vector<uint8_t> raw;
  raw.reserve((row + 1) * static_cast<size_t>(height));
  std::vector<uint8_t> cand[3];
  for (auto& c : cand) c.resize(row);
  const std::vector<uint8_t> zero_row(row, 0);
  for (int y = 0; y < height; ++y) {
    const uint8_t* cur = rgb.data() + row * static_cast<size_t>(y);
    const uint8_t* up = y > 0 ? cur - row : zero_row.data();
    for (size_t i = 0; i < row; ++i) {
      cand[0][i] = cur[i];
      cand[1][i] = static_cast<uint8_t>(cur[i] - (i >= 3 ? cur[i - 3] : 0));
      cand[2][i] = static_cast<uint8_t>(cur[i] - up[i]);
    }
    int best = 0;
    uint64_t best_cost = filter_cost(cand[0]);
    for (int f = 1; f < 3; ++f) {
      const uint64_t c = filter_cost(cand[f]);
      if (c < best_cost) {
        best_cost = c;
        best = f;
      }
    }
    raw.push_back(static_cast<uint8_t>(best));
    raw.insert(raw.end(), cand[best].begin(), cand[best].end());
  }
  put_chunk(out, "IDAT", zlib_compress(raw));
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
