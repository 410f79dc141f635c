// UTF-8 decoding/encoding and the generated Unicode class tables.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace llmopt::unicode {
namespace {

TEST(TokenizerUnicode, DecodeValidSequences) {
  const std::string s = "a\xC3\xA9\xE2\x96\x81\xF0\x9F\xA6\x99";  // a é ▁ 🦙
  size_t len;
  EXPECT_EQ(utf8_decode(s, 0, &len), 'a');
  EXPECT_EQ(len, 1u);
  EXPECT_EQ(utf8_decode(s, 1, &len), 0xE9u);
  EXPECT_EQ(len, 2u);
  EXPECT_EQ(utf8_decode(s, 3, &len), 0x2581u);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(utf8_decode(s, 6, &len), 0x1F999u);
  EXPECT_EQ(len, 4u);
  EXPECT_TRUE(utf8_valid(s));
}

TEST(TokenizerUnicode, InvalidBytesDecodeOneAtATime) {
  size_t len;
  for (std::string bad :
       {std::string("\x80"), std::string("\xFF"), std::string("\xC3"),    // lone / truncated
        std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),             // overlong, surrogate
        std::string("\xF4\x90\x80\x80"), std::string("\xE2\x28\xA1")}) {  // > U+10FFFF, bad cont
    EXPECT_EQ(utf8_decode(bad, 0, &len), kInvalidCodepoint) << testing::PrintToString(bad);
    EXPECT_EQ(len, 1u);
    EXPECT_FALSE(utf8_valid(bad));
  }
}

TEST(TokenizerUnicode, EncodeRoundTrips) {
  for (uint32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFFu, 0x10000u, 0x10FFFFu}) {
    const std::string s = utf8_encode(cp);
    size_t len;
    EXPECT_EQ(utf8_decode(s, 0, &len), cp);
    EXPECT_EQ(len, s.size());
  }
}

TEST(TokenizerUnicode, Classes) {
  EXPECT_TRUE(is_letter('a'));
  EXPECT_TRUE(is_letter(0xE9));      // é
  EXPECT_TRUE(is_letter(0x4F60));    // 你
  EXPECT_TRUE(is_letter(0x3042));    // あ
  EXPECT_TRUE(is_letter(0x2C6));     // ˆ (Lm)
  EXPECT_FALSE(is_letter(0x301));    // combining acute (Mn)
  EXPECT_FALSE(is_letter(0x1F600));  // emoji (So)
  EXPECT_TRUE(is_number('7'));
  EXPECT_TRUE(is_number(0xBD));    // ½ (No)
  EXPECT_TRUE(is_number(0x2167));  // Ⅷ (Nl)
  EXPECT_TRUE(is_number(0x663));   // Arabic-Indic 3 (Nd)
  EXPECT_FALSE(is_number('a'));
  for (uint32_t ws : {0x9u, 0xAu, 0xBu, 0xCu, 0xDu, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u, 0x200Au, 0x2028u,
                      0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(is_whitespace(ws)) << std::hex << ws;
  }
  EXPECT_FALSE(is_whitespace(0x200B));  // zero-width space is not White_Space
  EXPECT_FALSE(is_whitespace(0xFEFF));
  EXPECT_FALSE(is_whitespace(0x1C));
  EXPECT_EQ(codepoint_flags(kInvalidCodepoint), 0);
  EXPECT_EQ(codepoint_flags(0x110000), 0);
}

TEST(TokenizerUnicode, TableIsSortedAndDisjoint) {
  ASSERT_GT(kNumCodepointRanges, 100u);
  for (size_t i = 0; i < kNumCodepointRanges; ++i) {
    EXPECT_LE(kCodepointRanges[i].first, kCodepointRanges[i].last);
    if (i > 0) {
      EXPECT_LT(kCodepointRanges[i - 1].last, kCodepointRanges[i].first);
    }
  }
}

}  // namespace
}  // namespace llmopt::unicode
