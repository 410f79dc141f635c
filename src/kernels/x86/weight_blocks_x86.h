// x86 decoders of weight blocks for the matmul row kernels in matmul_x86.h: 8 floats of an F32 /
// F16 / BF16 row, or one 32-element block of a quantized row as bytes plus its scales. Included only
// through matmul_x86.h by the per-ISA translation units (internal linkage, see there).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cmath>
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

// ref::quantize_act_i8 (one int8 scale for the row, kI8Ch's activations) with the same float
// operations: the same maximum of |x| (NaN ignored), the same division by the scale, round half to
// even, saturation to +-127, and NaN to code 0 (what the reference's conversion gives).
inline float quantize_act_i8_x86(const float* x, int64_t n, float static_scale, int8_t* q) {
  float scale = static_scale;
  if (scale <= 0.0f) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 mx = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), mx);  // NaN: mx
    float amax = hmax(mx);
    for (; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    scale = amax / 127.0f;
  }
  if (scale == 0.0f) {
    std::memset(q, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  const __m256 sv = _mm256_set1_ps(scale), hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
  auto codes = [&](const float* p) {
    __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(p), sv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_max_ps(lo, _mm256_min_ps(hi, v));               // NaN stays NaN (second operand)
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));      // NaN -> 0
    return _mm256_cvtps_epi32(v);
  };
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    const __m256i p01 = _mm256_packs_epi32(codes(x + j), codes(x + j + 8));
    const __m256i p23 = _mm256_packs_epi32(codes(x + j + 16), codes(x + j + 24));
    const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + j), p);
  }
  for (; j < n; ++j) {
    const float v = std::nearbyint(x[j] / scale);
    q[j] = std::isnan(v) ? int8_t{0} : static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));  // as the reference
  }
  return scale;
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
  // The 16 bytes in both halves (a broadcast load), the upper half shifted by 4 (one variable shift),
  // masked: one shuffle-port operation fewer than shifting a copy and inserting it (measured: Q4_0
  // decode rows 22.4 -> 25.9 GMAC/s per core, Q4_1 20.9 -> 23.8).
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
  return _mm256_and_si256(_mm256_srlv_epi32(b, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
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

}  // namespace
}  // namespace llmopt::kernels
