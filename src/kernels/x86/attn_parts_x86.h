// The pieces of the flash-style attention step (attn_x86.h): K / V rows loaded as f32 (F16C for f16
// caches), the score passes of one to three query rows x four keys, each (query, key) sum reduced by
// the same hadd tree whatever shared the pass, and the value sums of up to three rows that see the same
// keys. Internal linkage like matmul_x86.h; included by attn_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/x86/vec_x86.h"

namespace llmopt::kernels {
namespace {

template <bool F16>
inline __m256 load_kv8(const void* base, int64_t off) {
  if constexpr (F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + off)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  }
}

// Row j (hd elements) as f32 in tmp, for the odd-size fallbacks.
template <bool F16>
inline const float* kv_row_f32(const void* base, int64_t stride, int32_t j, int64_t hd, float* tmp) {
  if constexpr (!F16) {
    return static_cast<const float*>(base) + j * stride;
  } else {
    const uint16_t* h = static_cast<const uint16_t*>(base) + j * stride;
    int64_t d = 0;
    for (; d + 8 <= hd; d += 8) _mm256_storeu_ps(tmp + d, load_kv8<true>(h, d));
    for (; d < hd; ++d) tmp[d] = _cvtsh_ss(h[d]);
    return tmp;
  }
}

// The four dot products of accumulators a0..a3, times scale, into out[0..4).
inline void reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3, float scale, float* out) {
  // hadd(a0, a1) = [a0 pairs, a1 pairs] per 128-bit lane; a second hadd leaves per lane the four
  // partial sums; adding the two lanes gives the four dot products.
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  _mm_storeu_ps(out, _mm_mul_ps(sum, _mm_set1_ps(scale)));
}

// Scores of query rows qa and qb (qb may repeat qa) against keys [j0, j0 + 4) (indices past n - 1
// repeat key n - 1), into sa[j0..] and sb[j0..].
template <bool F16>
inline void scores_2x4(const float* qa, const float* qb, const void* k, int64_t stride, int32_t j0, int32_t n,
                       int64_t hd, float scale, float* sa, float* sb) {
  int64_t r[4];
  for (int x = 0; x < 4; ++x) r[x] = std::min(j0 + x, n - 1) * stride;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; d += 8) {
    const __m256 qav = _mm256_loadu_ps(qa + d), qbv = _mm256_loadu_ps(qb + d);
    const __m256 k0 = load_kv8<F16>(k, r[0] + d), k1 = load_kv8<F16>(k, r[1] + d);
    a0 = _mm256_fmadd_ps(qav, k0, a0);
    b0 = _mm256_fmadd_ps(qbv, k0, b0);
    a1 = _mm256_fmadd_ps(qav, k1, a1);
    b1 = _mm256_fmadd_ps(qbv, k1, b1);
    const __m256 k2 = load_kv8<F16>(k, r[2] + d), k3 = load_kv8<F16>(k, r[3] + d);
    a2 = _mm256_fmadd_ps(qav, k2, a2);
    b2 = _mm256_fmadd_ps(qbv, k2, b2);
    a3 = _mm256_fmadd_ps(qav, k3, a3);
    b3 = _mm256_fmadd_ps(qbv, k3, b3);
  }
  reduce4(a0, a1, a2, a3, scale, sa + j0);
  reduce4(b0, b1, b2, b3, scale, sb + j0);
}

// Scores of query rows qa, qb and qc against keys [j0, j0 + 4), as scores_2x4 computes each row (a
// GQA group of three query heads: each key vector is loaded and converted once for the three).
template <bool F16>
inline void scores_3x4(const float* qa, const float* qb, const float* qc, const void* k, int64_t stride, int32_t j0,
                       int32_t n, int64_t hd, float scale, float* sa, float* sb, float* sc) {
  int64_t r[4];
  for (int x = 0; x < 4; ++x) r[x] = std::min(j0 + x, n - 1) * stride;
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  __m256 c0 = a0, c1 = a0, c2 = a0, c3 = a0;
  for (int64_t d = 0; d < hd; d += 8) {
    const __m256 k0 = load_kv8<F16>(k, r[0] + d), k1 = load_kv8<F16>(k, r[1] + d);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qa + d), k0, a0);
    b0 = _mm256_fmadd_ps(_mm256_loadu_ps(qb + d), k0, b0);
    c0 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + d), k0, c0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qa + d), k1, a1);
    b1 = _mm256_fmadd_ps(_mm256_loadu_ps(qb + d), k1, b1);
    c1 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + d), k1, c1);
    const __m256 k2 = load_kv8<F16>(k, r[2] + d), k3 = load_kv8<F16>(k, r[3] + d);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(qa + d), k2, a2);
    b2 = _mm256_fmadd_ps(_mm256_loadu_ps(qb + d), k2, b2);
    c2 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + d), k2, c2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(qa + d), k3, a3);
    b3 = _mm256_fmadd_ps(_mm256_loadu_ps(qb + d), k3, b3);
    c3 = _mm256_fmadd_ps(_mm256_loadu_ps(qc + d), k3, c3);
  }
  reduce4(a0, a1, a2, a3, scale, sa + j0);
  reduce4(b0, b1, b2, b3, scale, sb + j0);
  reduce4(c0, c1, c2, c3, scale, sc + j0);
}

// Scores of one query row against keys [j0, j0 + 4), as scores_2x4 computes each of its rows (the same
// products, sums and reduction), for a row without a partner (decode without GQA, an odd last row).
template <bool F16>
inline void scores_1x4(const float* qa, const void* k, int64_t stride, int32_t j0, int32_t n, int64_t hd, float scale,
                       float* sa) {
  int64_t r[4];
  for (int x = 0; x < 4; ++x) r[x] = std::min(j0 + x, n - 1) * stride;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; d += 8) {
    const __m256 qav = _mm256_loadu_ps(qa + d);
    a0 = _mm256_fmadd_ps(qav, load_kv8<F16>(k, r[0] + d), a0);
    a1 = _mm256_fmadd_ps(qav, load_kv8<F16>(k, r[1] + d), a1);
    a2 = _mm256_fmadd_ps(qav, load_kv8<F16>(k, r[2] + d), a2);
    a3 = _mm256_fmadd_ps(qav, load_kv8<F16>(k, r[3] + d), a3);
  }
  reduce4(a0, a1, a2, a3, scale, sa + j0);
}

// Output rows ra..ra+nr-1 (nr = 1..3, sharing the visible keys [0, vis)): o = o * c + sum_j p_j v_j, 16
// dimensions at a time so that each value vector is loaded and converted once for the nr rows. Every
// row takes the same operations in the same order (o * c when c != 1, then one fma per key in key
// order) whichever rows it is computed with.
template <bool F16>
inline void accumulate_values(float* const* o, const float* const* p, const float* c, int nr, const void* v,
                              int64_t stride, int64_t hd, int32_t vis) {
  int64_t d0 = 0;
  for (; d0 + 16 <= hd; d0 += 16) {
    __m256 acc[3][2];
    for (int i = 0; i < nr; ++i) {
      acc[i][0] = _mm256_loadu_ps(o[i] + d0);
      acc[i][1] = _mm256_loadu_ps(o[i] + d0 + 8);
      if (c[i] != 1.0f) {
        acc[i][0] = _mm256_mul_ps(acc[i][0], _mm256_set1_ps(c[i]));
        acc[i][1] = _mm256_mul_ps(acc[i][1], _mm256_set1_ps(c[i]));
      }
    }
    if (nr == 3) {
      for (int32_t j = 0; j < vis; ++j) {
        const __m256 v0 = load_kv8<F16>(v, j * stride + d0), v1 = load_kv8<F16>(v, j * stride + d0 + 8);
        const __m256 pa = _mm256_set1_ps(p[0][j]), pb = _mm256_set1_ps(p[1][j]), pc = _mm256_set1_ps(p[2][j]);
        acc[0][0] = _mm256_fmadd_ps(pa, v0, acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(pa, v1, acc[0][1]);
        acc[1][0] = _mm256_fmadd_ps(pb, v0, acc[1][0]);
        acc[1][1] = _mm256_fmadd_ps(pb, v1, acc[1][1]);
        acc[2][0] = _mm256_fmadd_ps(pc, v0, acc[2][0]);
        acc[2][1] = _mm256_fmadd_ps(pc, v1, acc[2][1]);
      }
    } else if (nr == 2) {
      for (int32_t j = 0; j < vis; ++j) {
        const __m256 v0 = load_kv8<F16>(v, j * stride + d0), v1 = load_kv8<F16>(v, j * stride + d0 + 8);
        const __m256 pa = _mm256_set1_ps(p[0][j]), pb = _mm256_set1_ps(p[1][j]);
        acc[0][0] = _mm256_fmadd_ps(pa, v0, acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(pa, v1, acc[0][1]);
        acc[1][0] = _mm256_fmadd_ps(pb, v0, acc[1][0]);
        acc[1][1] = _mm256_fmadd_ps(pb, v1, acc[1][1]);
      }
    } else {
      for (int32_t j = 0; j < vis; ++j) {
        const __m256 pa = _mm256_set1_ps(p[0][j]);
        acc[0][0] = _mm256_fmadd_ps(pa, load_kv8<F16>(v, j * stride + d0), acc[0][0]);
        acc[0][1] = _mm256_fmadd_ps(pa, load_kv8<F16>(v, j * stride + d0 + 8), acc[0][1]);
      }
    }
    for (int i = 0; i < nr; ++i) {
      _mm256_storeu_ps(o[i] + d0, acc[i][0]);
      _mm256_storeu_ps(o[i] + d0 + 8, acc[i][1]);
    }
  }
  for (; d0 + 8 <= hd; d0 += 8) {
    for (int i = 0; i < nr; ++i) {
      __m256 acc = _mm256_loadu_ps(o[i] + d0);
      if (c[i] != 1.0f) acc = _mm256_mul_ps(acc, _mm256_set1_ps(c[i]));
      for (int32_t j = 0; j < vis; ++j) acc = _mm256_fmadd_ps(_mm256_set1_ps(p[i][j]), load_kv8<F16>(v, j * stride + d0), acc);
      _mm256_storeu_ps(o[i] + d0, acc);
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
