// PNG encoding with no external libraries: scanlines are filtered (None/Sub/Up, chosen per row) and
// compressed with our own deflate (fixed Huffman codes, greedy LZ77), plus the two checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace llmopt::report {

// CRC-32 (ISO-HDLC, the one PNG chunks and zip use) and Adler-32 (the zlib stream trailer).
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);
uint32_t adler32(const uint8_t* data, size_t n, uint32_t adler = 1);

// Encodes a row-major 8-bit RGB image (width*height*3 bytes) as a complete PNG file.
Result<std::vector<uint8_t>> encode_png(int width, int height, const std::vector<uint8_t>& rgb);
Status write_png(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb);

}  // namespace llmopt::report
