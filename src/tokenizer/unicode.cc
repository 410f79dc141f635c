// UTF-8 decode/encode and class lookups over the generated range table (see unicode.h).
#include "tokenizer/unicode.h"

#include <algorithm>

namespace llmopt::unicode {

uint32_t utf8_decode(std::string_view s, size_t pos, size_t* len) {
  *len = 1;
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) return b0;
  size_t n;
  uint32_t cp;
  uint32_t min_cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min_cp = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min_cp = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min_cp = 0x10000;
  } else {
    return kInvalidCodepoint;  // continuation byte or 0xF8..0xFF
  }
  if (pos + n > s.size()) return kInvalidCodepoint;
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return kInvalidCodepoint;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return kInvalidCodepoint;
  *len = n;
  return cp;
}

void utf8_append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  utf8_append(cp, &s);
  return s;
}

bool utf8_valid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t len;
    if (utf8_decode(s, pos, &len) == kInvalidCodepoint) return false;
    pos += len;
  }
  return true;
}

uint8_t codepoint_flags(uint32_t cp) {
  // Fast path for ASCII, which dominates real text.
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return kLetter;
    if (cp >= '0' && cp <= '9') return kNumber;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kWhitespace;
    return 0;
  }
  if (cp == kInvalidCodepoint) return 0;
  const CodepointRange* begin = kCodepointRanges;
  const CodepointRange* end = kCodepointRanges + kNumCodepointRanges;
  // First range whose last >= cp.
  const CodepointRange* it =
      std::lower_bound(begin, end, cp, [](const CodepointRange& r, uint32_t c) { return r.last < c; });
  if (it != end && it->first <= cp) return it->flags;
  return 0;
}

}  // namespace llmopt::unicode
