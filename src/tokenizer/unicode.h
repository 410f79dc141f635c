// UTF-8 decoding/encoding and the Unicode class lookups the tokenizers need (letter, number,
// white space). The class tables are generated into unicode_tables.cc by tools/gen_unicode_tables.py.
// Invalid UTF-8 never fails here: each bad byte decodes as its own one-byte "character".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmopt::unicode {

// Returned by utf8_decode for a byte that does not start a valid UTF-8 sequence.
inline constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;

// Decodes the code point starting at s[pos] (pos < s.size()) and stores its byte length (1..4) in
// *len. Overlong forms, surrogates, values past U+10FFFF and truncated sequences yield
// kInvalidCodepoint with *len = 1.
uint32_t utf8_decode(std::string_view s, size_t pos, size_t* len);
// Byte length of the character starting at s[pos], with the same rules as utf8_decode.
inline size_t utf8_char_len(std::string_view s, size_t pos) {
  size_t len = 1;
  utf8_decode(s, pos, &len);
  return len;
}
// Appends the UTF-8 encoding of cp (cp <= 0x10FFFF).
void utf8_append(uint32_t cp, std::string* out);
std::string utf8_encode(uint32_t cp);
// True if the whole string is valid UTF-8.
bool utf8_valid(std::string_view s);

// Class flags of a code point.
enum : uint8_t { kLetter = 1, kNumber = 2, kWhitespace = 4 };
struct CodepointRange {
  uint32_t first, last;
  uint8_t flags;
};
// Generated tables (sorted, non-overlapping).
extern const CodepointRange kCodepointRanges[];
extern const size_t kNumCodepointRanges;
extern const char* const kUnicodeVersion;

// Flags for cp; 0 for unassigned, punctuation, symbols, marks, controls and kInvalidCodepoint.
uint8_t codepoint_flags(uint32_t cp);
inline bool is_letter(uint32_t cp) { return (codepoint_flags(cp) & kLetter) != 0; }          // \p{L}
inline bool is_number(uint32_t cp) { return (codepoint_flags(cp) & kNumber) != 0; }          // \p{N}
inline bool is_whitespace(uint32_t cp) { return (codepoint_flags(cp) & kWhitespace) != 0; }  // \s

}  // namespace llmopt::unicode
