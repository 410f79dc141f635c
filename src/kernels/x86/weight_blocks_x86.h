// x86 decoders of weight blocks for the matmul row kernels in matmul_x86.h: 8 floats of an F32 /
// F16 / BF16 row, or one 32-element block of a quantized row as bytes plus its scales. Included only
// through matmul_x86.h by the per-ISA translation units (internal linkage, see there).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

inline float load_half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Same float operations as ref::quantize_row_q8_act, so the blocks are bit-identical.
inline void quantize_act_row_x86(const float* src, BlockQ8Act* dst, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    __m256 v[4];
    for (int j = 0; j < 4; ++j) v[j] = _mm256_loadu_ps(x + 8 * j);
    __m256 mx = _mm256_andnot_ps(sign, v[0]);
    for (int j = 1; j < 4; ++j) mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, v[j]));
    const float amax = hmax(mx);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 mul = _mm256_set1_ps(id);
    __m256i q[4];
    for (int j = 0; j < 4; ++j) {
      q[j] = _mm256_cvtps_epi32(
          _mm256_round_ps(_mm256_mul_ps(v[j], mul), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    // packs work per 128-bit lane; the permute puts the 8 groups of 4 back in order.
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    __m256i p = _mm256_packs_epi16(p01, p23);
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst[b].qs), p);
    dst[b].d = d;
    dst[b].s = d * static_cast<float>(sum);
  }
}

// ---- float weight types: 8 elements of row `row` from column c, as f32 ---------------------------
struct WF32 {
  static constexpr int kBytes = 4;
  static __m256 load8(const uint8_t* row, int64_t c) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row + 4 * c));
  }
};
struct WF16 {
  static constexpr int kBytes = 2;
  static __m256 load8(const uint8_t* row, int64_t c) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c)));
  }
};
struct WBF16 {
  static constexpr int kBytes = 2;
  static __m256 load8(const uint8_t* row, int64_t c) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * c));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};

// ---- block weight types against BlockQ8Act activations ---------------------------------------------
// load(row, b) gives 32-element block b's quants in element order (signed, or unsigned when
// kUnsigned), the scale of each (per int32 lane of dot_u8s8: lane l covers elements 4l..4l+3) and,
// when kHasMin, the offset m (x = q * d + m). K-quants are read as 32-element blocks of their
// super-blocks.
struct WBlock {
  __m256i q;
  __m256 d;
  float m;
};

struct WQ8_0 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ8_0);  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = false;
  static constexpr bool kHasMin = false;
  static constexpr int64_t kHalfScale = offsetof(BlockQ8_0, d);  // d: an f16 at this offset of a block
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + b * static_cast<int64_t>(sizeof(BlockQ8_0));
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ8_0, qs))),
            _mm256_set1_ps(load_half(p)), 0.0f};
  }
  // The signed codes and the scale of block b, read directly.
  static const uint8_t* codes(const uint8_t* row, int64_t b) {
    return row + b * static_cast<int64_t>(sizeof(BlockQ8_0)) + offsetof(BlockQ8_0, qs);
  }
  static float scale(const uint8_t* row, int64_t b) { return load_half(row + b * static_cast<int64_t>(sizeof(BlockQ8_0))); }
};

// 16 bytes of nibbles -> 32 bytes: low nibbles (elements 0..15), then high nibbles (16..31).
inline __m256i unpack_nibbles(const uint8_t* qs) {
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i hi = _mm_srli_epi16(lo, 4);
  return _mm256_and_si256(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(0x0F));
}

// Q4_0 and Q5_0 are read as unsigned codes with an offset (x = q * d + m, m = -8 d or -16 d) so the
// integer products need no sign operations (u8 codes <= 31 times s8 activations never saturate the
// int16 pair sums); the offset is m * sum(x) per block, like Q4_1's.
struct WQ4_0 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_0);  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 15;
  static constexpr int64_t kHalfScale = offsetof(BlockQ4_0, d);
  static constexpr float kMinPerD = -8.0f;  // m = -8 d
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + b * static_cast<int64_t>(sizeof(BlockQ4_0));
    const float d = load_half(p);
    return {unpack_nibbles(p + offsetof(BlockQ4_0, qs)), _mm256_set1_ps(d), -8.0f * d};
  }
};

struct WQ4_1 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_1);  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 15;
  static constexpr int64_t kHalfScale = offsetof(BlockQ4_1, d);
  static constexpr int64_t kHalfMin = offsetof(BlockQ4_1, m);  // m: an f16 at this offset
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + b * static_cast<int64_t>(sizeof(BlockQ4_1));
    return {unpack_nibbles(p + offsetof(BlockQ4_1, qs)),
            _mm256_set1_ps(load_half(p + offsetof(BlockQ4_1, d))), load_half(p + offsetof(BlockQ4_1, m))};
  }
};

// 32 bits -> 32 bytes: byte j is 0x10 where bit j is set, else 0 (the fifth bit of Q5_0 / Q5_1).
inline __m256i fifth_bits(const uint8_t* qh4) {
  uint32_t x;
  std::memcpy(&x, qh4, 4);
  const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  // Each byte keeps every bit but bit (j % 8) set, so it is all ones exactly when bit j of x is.
  const __m256i set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
                                        _mm256_set1_epi64x(-1));
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

struct WQ4_1G128 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ4_1G128) / 4;  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 15;
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + (b / 4) * static_cast<int64_t>(sizeof(BlockQ4_1G128));
    return {unpack_nibbles(p + offsetof(BlockQ4_1G128, qs) + 16 * (b % 4)),
            _mm256_set1_ps(load_half(p + offsetof(BlockQ4_1G128, d))), load_half(p + offsetof(BlockQ4_1G128, m))};
  }
};

struct WQ5_0 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ5_0);  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 31;
  static constexpr int64_t kHalfScale = offsetof(BlockQ5_0, d);
  static constexpr float kMinPerD = -16.0f;  // m = -16 d
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + b * static_cast<int64_t>(sizeof(BlockQ5_0));
    const __m256i q5 =
        _mm256_or_si256(unpack_nibbles(p + offsetof(BlockQ5_0, qs)), fifth_bits(p + offsetof(BlockQ5_0, qh)));
    const float d = load_half(p);
    return {q5, _mm256_set1_ps(d), -16.0f * d};
  }
};

struct WQ5_1 {
  static constexpr int64_t kBlockBytes = sizeof(BlockQ5_1);  // per 32 elements (prefetch distance)
  static constexpr bool kUnsigned = true;
  static constexpr bool kHasMin = true;
  static constexpr int kMaxCode = 31;
  static constexpr int64_t kHalfScale = offsetof(BlockQ5_1, d);
  static constexpr int64_t kHalfMin = offsetof(BlockQ5_1, m);
  static WBlock load(const uint8_t* row, int64_t b) {
    const uint8_t* p = row + b * static_cast<int64_t>(sizeof(BlockQ5_1));
    const __m256i q5 =
        _mm256_or_si256(unpack_nibbles(p + offsetof(BlockQ5_1, qs)), fifth_bits(p + offsetof(BlockQ5_1, qh)));
    return {q5, _mm256_set1_ps(load_half(p + offsetof(BlockQ5_1, d))), load_half(p + offsetof(BlockQ5_1, m))};
  }
};

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
