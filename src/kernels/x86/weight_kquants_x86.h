// x86 decoders of the K-quant weight blocks (Q4_K, Q5_K, Q6_K) for the matmul kernels: one 32-element
// block of a super-block at a time (load, as weight_blocks_x86.h's types), and a super-block's scales
// at once for the block-dot kernels (super_scales). Included only through matmul_x86.h (internal
// linkage, see there).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/ref/blocks.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block (ref's scale_min_k4).
inline void scale_min_k4(int j, const uint8_t* sc, int* s, int* m) {
  if (j < 4) {
    *s = sc[j] & 63;
    *m = sc[j + 4] & 63;
  } else {
    *s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
    *m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
  }
}

// All 8 sub-blocks' scale_min_k4 of a Q4_K / Q5_K super-block at once, times d and -dmin (the same
// float operations as the per-block loads): bytes 0..3 of sc / m are the low 6 bits of the scale
// words w0 / w1; bytes 4..7 the nibbles of w2 and the top 2 bits of w0 / w1.
inline void k4_super_scales(const uint8_t* scales, float d, float dmin, __m256* ds, __m256* dm) {
  uint32_t w[3];
  std::memcpy(w, scales, 12);
  const uint32_t sc_lo = w[0] & 0x3f3f3f3fu, m_lo = w[1] & 0x3f3f3f3fu;
  const uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
  const __m128i sc8 = _mm_setr_epi32(static_cast<int>(sc_lo), static_cast<int>(sc_hi), 0, 0);
  const __m128i m8 = _mm_setr_epi32(static_cast<int>(m_lo), static_cast<int>(m_hi), 0, 0);
  *ds = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc8)));
  const __m256 dmv = _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m8)));
  *dm = _mm256_xor_ps(dmv, _mm256_set1_ps(-0.0f));
}

// k4_super_scales for 4 rows at once, already by block: ds4[j] / dm4[j] hold sub-block j's d * sc_j and
// -(dmin * m_j) of rows 0..3 (the same float operations). p[r]: row r's super-block, which starts with
// d, dmin and the 12 scale bytes (Q4_K and Q5_K alike). The 4 x 16 leading bytes are transposed as
// dwords, so each bit operation of k4_super_scales serves the 4 rows, and one byte shuffle per pair
// of sub-blocks (j, j + 4) widens their scales for the 4 rows.
inline void k4_super_scales4(const uint8_t* const* p, __m128* ds4, __m128* dm4) {
  __m128i x[4];
  for (int r = 0; r < 4; ++r) x[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p[r]));
  const __m128i t0 = _mm_unpacklo_epi32(x[0], x[1]), t1 = _mm_unpacklo_epi32(x[2], x[3]);
  const __m128i t2 = _mm_unpackhi_epi32(x[0], x[1]), t3 = _mm_unpackhi_epi32(x[2], x[3]);
  const __m128i dd = _mm_unpacklo_epi64(t0, t1);  // (d | dmin << 16) of rows 0..3
  const __m128i w0 = _mm_unpackhi_epi64(t0, t1), w1 = _mm_unpacklo_epi64(t2, t3), w2 = _mm_unpackhi_epi64(t2, t3);
  const __m128i m3f = _mm_set1_epi8(0x3f), m0f = _mm_set1_epi8(0x0f), m03 = _mm_set1_epi8(0x03);
  const __m128i sc_lo = _mm_and_si128(w0, m3f), m_lo = _mm_and_si128(w1, m3f);
  const __m128i sc_hi =
      _mm_or_si128(_mm_and_si128(w2, m0f), _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(w0, 6), m03), 4));
  const __m128i m_hi = _mm_or_si128(_mm_and_si128(_mm_srli_epi32(w2, 4), m0f),
                                    _mm_slli_epi32(_mm_and_si128(_mm_srli_epi32(w1, 6), m03), 4));
  const __m128 d4 = _mm_cvtph_ps(_mm_shuffle_epi8(dd, _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1)));
  const __m128 dmin4 =
      _mm_cvtph_ps(_mm_shuffle_epi8(dd, _mm_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1)));
  const __m256i sc = _mm256_set_m128i(sc_hi, sc_lo), mm = _mm256_set_m128i(m_hi, m_lo);
  const __m256 d8 = _mm256_set_m128(d4, d4), dmin8 = _mm256_set_m128(dmin4, dmin4);
  for (int j = 0; j < 4; ++j) {
    // Byte j of each dword, zero-extended: in the low half sub-block j, in the high half j + 4.
    const __m256i pick = _mm256_setr_epi8(j, -1, -1, -1, 4 + j, -1, -1, -1, 8 + j, -1, -1, -1, 12 + j, -1, -1, -1,
                                          j, -1, -1, -1, 4 + j, -1, -1, -1, 8 + j, -1, -1, -1, 12 + j, -1, -1, -1);
    const __m256 dsj = _mm256_mul_ps(d8, _mm256_cvtepi32_ps(_mm256_shuffle_epi8(sc, pick)));
    const __m256 dmj =
        _mm256_xor_ps(_mm256_mul_ps(dmin8, _mm256_cvtepi32_ps(_mm256_shuffle_epi8(mm, pick))), _mm256_set1_ps(-0.0f));
    ds4[j] = _mm256_castps256_ps128(dsj);
    ds4[j + 4] = _mm256_extractf128_ps(dsj, 1);
    dm4[j] = _mm256_castps256_ps128(dmj);
    dm4[j + 4] = _mm256_extractf128_ps(dmj, 1);
  }
}

// Sub-block j (0..7) of a Q5_K super-block: as Q4_K, plus bit j of qh[l] as the fifth bit of element l
// (ref::dequantize_row_q5_k).
struct WQ5_K {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ5_K) / 8;  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 31;
  static constexpr int64_t kSuperBytes = sizeof(BlockQ5_K);  // 8 blocks of 32 share one super-block
  static void super_scales(const uint8_t* row, int64_t sb, __m256* ds, __m256* dm) {
    const uint8_t* p = row + sb * kSuperBytes;
    k4_super_scales(p + offsetof(BlockQ5_K, scales), load_half(p + offsetof(BlockQ5_K, d)),
                    load_half(p + offsetof(BlockQ5_K, dmin)), ds, dm);
  }
  static void super_scales4(const uint8_t* const* rows, int64_t sb, __m128* ds4, __m128* dm4) {
    const uint8_t* p[4];
    for (int r = 0; r < 4; ++r) p[r] = rows[r] + sb * kSuperBytes;
    k4_super_scales4(p, ds4, dm4);
  }
  static void super_codes(const uint8_t* row, int64_t sb, int jp, __m256i* even, __m256i* odd) {
    *even = load(row, sb * 8 + 2 * jp).q;
    *odd = load(row, sb * 8 + 2 * jp + 1).q;
  }
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + (b / 8) * static_cast<int64_t>(sizeof(BlockQ5_K));
    const int j = static_cast<int>(b % 8);
    int s, m;
    scale_min_k4(j, p + offsetof(BlockQ5_K, scales), &s, &m);
    const __m256i raw =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ5_K, qs) + 32 * (j / 2)));
    const __m256i lo = _mm256_and_si256(j % 2 == 0 ? raw : _mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ5_K, qh)));
    const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j)), _mm256_set1_epi8(0x01));
    const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
    const float d = load_half(p + offsetof(BlockQ5_K, d)) * static_cast<float>(s);
    const float dm = load_half(p + offsetof(BlockQ5_K, dmin)) * static_cast<float>(m);
    return {q, _mm256_set1_ps(d), -dm};
  }
};

// Sub-block j (0..7) of a Q4_K super-block: x = (d * sc) * q - dmin * m, q the low nibbles of
// qs[32 (j / 2) ..] for even j, the high nibbles for odd j (ref::dequantize_row_q4_k).
struct WQ4_K {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_K) / 8;  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 15;
  static constexpr int64_t kSuperBytes = sizeof(BlockQ4_K);  // 8 blocks of 32 share one super-block
  // Super-block sb's 8 sub-block scales d * sc_j and offsets -(dmin * m_j), each as load() gives them.
  static void super_scales(const uint8_t* row, int64_t sb, __m256* ds, __m256* dm) {
    const uint8_t* p = row + sb * kSuperBytes;
    k4_super_scales(p + offsetof(BlockQ4_K, scales), load_half(p + offsetof(BlockQ4_K, d)),
                    load_half(p + offsetof(BlockQ4_K, dmin)), ds, dm);
  }
  static void super_scales4(const uint8_t* const* rows, int64_t sb, __m128* ds4, __m128* dm4) {
    const uint8_t* p[4];
    for (int r = 0; r < 4; ++r) p[r] = rows[r] + sb * kSuperBytes;
    k4_super_scales4(p, ds4, dm4);
  }
  // The codes of sub-blocks 2 jp (low nibbles) and 2 jp + 1 (high nibbles) of super-block sb.
  static void super_codes(const uint8_t* row, int64_t sb, int jp, __m256i* even, __m256i* odd) {
    const __m256i raw = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(row + sb * kSuperBytes + offsetof(BlockQ4_K, qs) + 32 * jp));
    *even = _mm256_and_si256(raw, _mm256_set1_epi8(0x0F));
    *odd = _mm256_and_si256(_mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
  }
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + (b / 8) * static_cast<int64_t>(sizeof(BlockQ4_K));
    const int j = static_cast<int>(b % 8);
    int s, m;
    scale_min_k4(j, p + offsetof(BlockQ4_K, scales), &s, &m);
    const __m256i raw =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ4_K, qs) + 32 * (j / 2)));
    const __m256i q = _mm256_and_si256(j % 2 == 0 ? raw : _mm256_srli_epi16(raw, 4), _mm256_set1_epi8(0x0F));
    const float d = load_half(p + offsetof(BlockQ4_K, d)) * static_cast<float>(s);
    const float dm = load_half(p + offsetof(BlockQ4_K, dmin)) * static_cast<float>(m);
    return {q, _mm256_set1_ps(d), -dm};
  }
};

// 32-element chunk c (0..7) of a Q6_K super-block: half h = c / 4, r = c % 4; element l takes nibble
// r / 2 of ql[64 h + 32 (r % 2) + l] and bits 2r..2r+1 of qh[32 h + l], minus 32; elements 0..15 use
// scale scales[8 h + 2 r], 16..31 scales[8 h + 2 r + 1] (ref::dequantize_row_q6_k).
struct WQ6_K {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ6_K) / 8;  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = false;
  static constexpr bool kHasMin = false;
  // Two scales per 32 elements (d lanes 0..3: elements 0..15, lanes 4..7: 16..31); codes -32..31.
  static constexpr bool kTwoScales = true;
  static constexpr bool kNoMin128 = true;
  static constexpr int kCodeOffset = 32;  // q + 32 is 0..63
  static constexpr int kMaxCode = 63;     // of q + 32
  static constexpr int64_t kSuperBytes = sizeof(BlockQ6_K);
  // Super-block sb's 16 scales d * sc_k (k = 2 c for elements 0..15 of block c, 2 c + 1 for 16..31),
  // as load() gives them: k = 0..7 in lo, 8..15 in hi.
  static void super_scales(const uint8_t* row, int64_t sb, __m256* lo, __m256* hi) {
    const uint8_t* p = row + sb * kSuperBytes;
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + offsetof(BlockQ6_K, scales)));
    const __m256 d = _mm256_set1_ps(load_half(p + offsetof(BlockQ6_K, d)));
    *lo = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
    *hi = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))));
  }
  // Block C (0..7) of super-block sb as unsigned codes q + 32 (0..63); C fixed at compile time, so the
  // shifts that pick its nibble and its two high bits are immediates.
  template <int C>
  static __m256i codes_u(const uint8_t* row, int64_t sb) {
    constexpr int h = C / 4, r = C % 4;
    const uint8_t* p = row + sb * kSuperBytes;
    const __m256i ql = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(p + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (r % 2)));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ6_K, qh) + 32 * h));
    const __m256i lo = _mm256_and_si256(r < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
    // Bits 2r, 2r + 1 of each qh byte, moved to bits 4, 5.
    const __m256i hi_at = r < 2 ? _mm256_slli_epi16(qh, 4 - 2 * r) : r == 2 ? qh : _mm256_srli_epi16(qh, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(hi_at, _mm256_set1_epi8(0x30)));
  }
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + (b / 8) * static_cast<int64_t>(sizeof(BlockQ6_K));
    const int c = static_cast<int>(b % 8);
    const int h = c / 4, r = c % 4;
    const __m256i ql = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(p + offsetof(BlockQ6_K, ql) + 64 * h + 32 * (r % 2)));
    const __m256i qh =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ6_K, qh) + 32 * h));
    const __m256i lo =
        _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (r / 2))), _mm256_set1_epi8(0x0F));
    const __m256i hi2 =
        _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * r)), _mm256_set1_epi8(0x03));
    const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4)), _mm256_set1_epi8(32));
    const auto* sc = reinterpret_cast<const int8_t*>(p + offsetof(BlockQ6_K, scales)) + 8 * h + 2 * r;
    const float d = load_half(p + offsetof(BlockQ6_K, d));
    const float d0 = d * static_cast<float>(sc[0]), d1 = d * static_cast<float>(sc[1]);
    return {q, _mm256_setr_ps(d0, d0, d0, d0, d1, d1, d1, d1), 0.0f};
  }
};

}  // namespace
}  // namespace llmopt::kernels
