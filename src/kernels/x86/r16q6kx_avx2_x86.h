// Q6_K regrouped by 16 rows (DType::kQ6_KR16 and kQ6_KR16X3) for batches of more than kR16PassMaxM rows on AVX2: the
// groups are restored, a few at a time, not to the file layout but to WQ6_KX blocks, whose 6-bit codes
// are one byte each, so the batched tiles (tiles_blockdot_x86.h) broadcast them straight from memory.
// From the file layout every tile re-decoded each block's codes (ql nibble, qh bits, offset, 128-bit
// permutes) for every 8 activation rows, about a third of the tile's operations; here they are built
// once per restore. The values are the same (codes q + 32, scales d * sc rounded as
// WQ6_K::super_scales rounds them) and the tile does the same operations in the same order, so the
// results are bit-identical to the file layout's (tests/kernels/r16_k_test.cc, batches of 70 rows).
// Internal linkage like matmul_x86.h; included by r16kavx2_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/x86/r16avx2_batch_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

constexpr int64_t kR16Q6KSuperBytesAvx2 = kR16Rows * 210;  // one super-block of a 16-row Q6_K group

// A block of 32 elements: the scales d * sc of elements 0..15 and 16..31 (f32), then the 32 codes
// q + 32 (0..63), one byte each. A DirectCodes type (blockdot_traits_x86.h) with Q6_K's two scales.
struct WQ6_KX {
  static constexpr int64_t kBlockBytes = 40;
  static constexpr bool kUnsigned = false;
  static constexpr bool kHasMin = false;
  static constexpr bool kTwoScales = true;
  static constexpr bool kNoMin128 = true;
  static constexpr int kCodeOffset = 32;
  static constexpr int kMaxCode = 63;
  static int64_t row_bytes(int64_t k) { return k / 32 * kBlockBytes; }
  static const uint8_t* codes(const uint8_t* row, int64_t b) { return row + b * kBlockBytes + 8; }
  static float scale(const uint8_t* row, int64_t b) { return load_f32(row + b * kBlockBytes); }
  static float scale1(const uint8_t* row, int64_t b) { return load_f32(row + b * kBlockBytes + 4); }
  // As WQ6_K::load: codes -32..31, d lanes 0..3 the first half's scale, 4..7 the second's.
  static WBlock load(const uint8_t* row, int64_t b) {
    const __m256i q = _mm256_sub_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes(row, b))),
                                      _mm256_set1_epi8(32));
    const float d0 = scale(row, b), d1 = scale1(row, b);
    return {q, _mm256_setr_ps(d0, d0, d0, d0, d1, d1, d1, d1), 0.0f};
  }

 private:
  static float load_f32(const uint8_t* p) {
    float f;
    std::memcpy(&f, p, sizeof f);
    return f;
  }
};

// The unsigned codes (q + 32) of elements 4q .. 4q + 3 of blocks 4h .. 4h + 3 (u[c]) of rows
// 8v .. 8v + 7 (row 8v + j in dword j) of the group super-block at sp (repack.h). kQ6_KR16: the low
// nibble from ql (64 h + 4 q) (blocks 4h, 4h + 2) or ql (64 h + 32 + 4 q) (4h + 1, 4h + 3), bits 2c,
// 2c + 1 of qh (32 h + 4 q) above it (17 operations). kQ6_KR16X3 (kX3): three planes, u[0..2] their low
// 6 bits, u[3] their top bit pairs (11 operations).
template <bool kX3>
inline void q6k_r16_codes_avx2(const uint8_t* sp, int h, int q, int v, __m256i (&u)[4]) {
  auto at = [&](int64_t off) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + off + 32 * v)); };
  if constexpr (kX3) {
    const __m256i low6 = _mm256_set1_epi8(0x3F), top2 = _mm256_set1_epi8(static_cast<char>(0xC0));
    const __m256i b0 = at(256 + 64 * (24 * h + 3 * q)), b1 = at(256 + 64 * (24 * h + 3 * q + 1));
    const __m256i b2 = at(256 + 64 * (24 * h + 3 * q + 2));
    u[0] = _mm256_and_si256(b0, low6);
    u[1] = _mm256_and_si256(b1, low6);
    u[2] = _mm256_and_si256(b2, low6);
    // the top pairs masked first, so the 16-bit shifts move no bits across bytes
    u[3] = _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(b0, top2), 6),
                                           _mm256_srli_epi16(_mm256_and_si256(b1, top2), 4)),
                           _mm256_srli_epi16(_mm256_and_si256(b2, top2), 2));
  } else {
    const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
    const __m256i lo = at(256 + 64 * (16 * h + q)), hi = at(256 + 64 * (16 * h + 8 + q));
    const __m256i qh = at(2304 + 64 * (8 * h + q));
    u[0] = _mm256_or_si256(_mm256_and_si256(lo, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
    u[1] = _mm256_or_si256(_mm256_and_si256(hi, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lo, 4), low4), _mm256_and_si256(qh, bits45));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(hi, 4), low4),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
  }
}

// Groups [g, g + n) of a kQ6_KR16 (kQ6_KR16X3: kX3) matrix as rows of WQ6_KX blocks at out
// (WQ6_KX::row_bytes(k) each).
template <bool kX3>
inline void restore_q6k_expanded(const MatmulArgs& a, int64_t g, int64_t n, uint8_t* out) {
  const int64_t nsb = a.k / 256, stride = WQ6_KX::row_bytes(a.k);
  for (int64_t gi = 0; gi < n; ++gi) {
    const uint8_t* base = a.w + static_cast<size_t>(g + gi) * kR16Rows * a.w_row_bytes;
    uint8_t* rows = out + static_cast<size_t>(gi) * kR16Rows * stride;
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* sp = base + sb * kR16Q6KSuperBytesAvx2;
      // Scales: d (f16 at 3328 + 2 j) times scale k = 8 h + 2 c + t (byte k % 4 of dword j at 64 (k / 4);
      // kX3: byte 16 k + j).
      for (int64_t j = 0; j < kR16Rows; ++j) {
        const float d = load_half(sp + 3328 + 2 * j);
        for (int k = 0; k < 16; ++k) {
          const uint8_t sc = kX3 ? sp[16 * k + j] : sp[64 * (k / 4) + 4 * j + k % 4];
          const float ds = d * static_cast<float>(static_cast<int8_t>(sc));
          std::memcpy(rows + j * stride + (sb * 8 + k / 2) * WQ6_KX::kBlockBytes + 4 * (k % 2), &ds, 4);
        }
      }
      // Codes: per half h and rows 8v .. 8v + 7, chunks q = 0..7 of each block through an 8 x 8 transpose.
      for (int h = 0; h < 2; ++h) {
        for (int v = 0; v < 2; ++v) {
          __m256i t[4][8];
          for (int q = 0; q < 8; ++q) {
            __m256i u[4];
            q6k_r16_codes_avx2<kX3>(sp, h, q, v, u);
            for (int c = 0; c < 4; ++c) t[c][q] = u[c];
          }
          for (int c = 0; c < 4; ++c) {
            transpose8x8_epi32(t[c]);
            for (int j = 0; j < 8; ++j) {
              uint8_t* o = rows + (8 * v + j) * stride + (sb * 8 + 4 * h + c) * WQ6_KX::kBlockBytes + 8;
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), t[c][j]);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
