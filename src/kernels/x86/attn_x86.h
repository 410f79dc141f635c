// Flash-style attention step (kernels::attn_block), 256-bit FMA with F16C loads for f16 caches.
// Included only by the x86 ISA translation units; internal linkage like matmul_x86.h.
//   Scores: two query rows x four keys per pass (8 accumulators), so each key vector is loaded (and
//   converted from f16) once for two queries; a row without a partner (decode without GQA) goes alone
//   through the same arithmetic. Every key of the chunk goes through a group of four (a
//   partial group repeats its last key), and each (query, key) sum is reduced by the same hadd tree, so
//   a score does not depend on which other rows or keys shared the pass (batch invariance).
//   Then per query row: the max, exp256 of the shifted scores, the running sum, and the output row kept
//   in registers 64 floats at a time while the visible value rows are added in.
// Head sizes that are not a multiple of 8 take scalar-loop fallbacks (dot_f32_x86 / axpy_f32_x86 on
// converted rows, at most 512 elements).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/x86/act_x86.h"
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

template <bool F16>
void attn_block_x86_t(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, int64_t stride,
                      int32_t n) {
  const bool vec = hd % 8 == 0;
  LLMOPT_CHECK_MSG(vec || hd <= 512, "attention: head size must be a multiple of 8 or at most 512");
  const int32_t rows = a.n_tok * a.group;
  alignas(32) float s[kAttnMaxRows][kAttnChunk + 4];  // + 4: the last group of four may run past n
  alignas(32) float p[kAttnChunk];
  float tmp[512];
  auto q_row = [&](int32_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * hd; };
  auto vis_of = [&](int32_t r) { return std::min(n, a.n_vis[r / a.group]); };
  // Scores of every row, over the keys its token may see (rounded up to groups of four).
  for (int32_t r = 0; r < rows; r += 2) {
    const int32_t rb = std::min(r + 1, rows - 1);
    const int32_t nk = std::max(vis_of(r), vis_of(rb));
    if (vec && rb == r) {
      for (int32_t j = 0; j < nk; j += 4) scores_1x4<F16>(q_row(r), k, stride, j, n, hd, scale, s[r]);
    } else if (vec) {
      for (int32_t j = 0; j < nk; j += 4) scores_2x4<F16>(q_row(r), q_row(rb), k, stride, j, n, hd, scale, s[r], s[rb]);
    } else {
      for (int32_t x : {r, rb}) {
        for (int32_t j = 0; j < vis_of(x); ++j) {
          s[x][j] = dot_f32_x86(q_row(x), kv_row_f32<F16>(k, stride, j, hd, tmp), hd) * scale;
        }
      }
    }
  }
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t vis = vis_of(r);
    if (vis <= 0) continue;
    float* sr = s[r];
    float* oi = a.o + (r / a.group) * a.o_stride + (r % a.group) * hd;
    // Keys past vis: -inf scores (no effect on the max) and p = 0.
    for (int32_t j = vis; j < kAttnChunk; ++j) sr[j] = -INFINITY;
    const __m256 s0 = _mm256_loadu_ps(sr), s1 = _mm256_loadu_ps(sr + 8);
    const __m256 mv = _mm256_max_ps(s0, s1);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float mx = std::max(a.m[r], _mm_cvtss_f32(m4));
    // exp(-inf) = 0 for the first chunk; no rescaling while the max stays.
    const float c = mx == a.m[r] ? 1.0f : std::exp(a.m[r] - mx);
    const __m256 vm = _mm256_set1_ps(mx);
    const __m256 live0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(vis), lane));
    const __m256 live1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(vis - 8), lane));
    const __m256 p0 = _mm256_and_ps(exp256(_mm256_sub_ps(s0, vm)), live0);
    const __m256 p1 = _mm256_and_ps(exp256(_mm256_sub_ps(s1, vm)), live1);
    _mm256_store_ps(p, p0);
    _mm256_store_ps(p + 8, p1);
    a.l[r] = a.l[r] * c + hsum(_mm256_add_ps(p0, p1));
    a.m[r] = mx;
    // Output: o = o * c + sum_j p_j v_j over the visible keys.
    const __m256 vc = _mm256_set1_ps(c);
    int64_t d0 = 0;
    if (vec) {
      for (; d0 + 64 <= hd; d0 += 64) {
        __m256 acc[8];
        for (int t = 0; t < 8; ++t) acc[t] = _mm256_loadu_ps(oi + d0 + 8 * t);
        if (c != 1.0f) {
          for (int t = 0; t < 8; ++t) acc[t] = _mm256_mul_ps(acc[t], vc);
        }
        for (int32_t j = 0; j < vis; ++j) {
          const __m256 pj = _mm256_set1_ps(p[j]);
          const int64_t rr = j * stride + d0;
          for (int t = 0; t < 8; ++t) acc[t] = _mm256_fmadd_ps(pj, load_kv8<F16>(v, rr + 8 * t), acc[t]);
        }
        for (int t = 0; t < 8; ++t) _mm256_storeu_ps(oi + d0 + 8 * t, acc[t]);
      }
      for (; d0 + 8 <= hd; d0 += 8) {
        __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(oi + d0), vc);
        for (int32_t j = 0; j < vis; ++j) acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), load_kv8<F16>(v, j * stride + d0), acc);
        _mm256_storeu_ps(oi + d0, acc);
      }
    } else {
      for (int64_t d = 0; d < hd; ++d) oi[d] *= c;
      for (int32_t j = 0; j < vis; ++j) axpy_f32_x86(p[j], kv_row_f32<F16>(v, stride, j, hd, tmp), oi, hd);
    }
  }
}

void attn_block_x86(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                    int64_t stride, int32_t n) {
  if (kv_f16) {
    attn_block_x86_t<true>(a, hd, scale, k, v, stride, n);
  } else {
    attn_block_x86_t<false>(a, hd, scale, k, v, stride, n);
  }
}

}  // namespace
}  // namespace llmopt::kernels
