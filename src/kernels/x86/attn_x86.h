// Flash-style attention step (kernels::attn_block), 256-bit FMA with F16C loads for f16 caches.
// Included only by the x86 ISA translation units; internal linkage like matmul_x86.h.
//   Scores: three query rows (a GQA group of three heads, or rows of three tokens of a prefill tile)
//   x four keys per pass, so each key vector is loaded (and converted from f16) once for several
//   queries; the last one or two rows go as a pair or alone through the same arithmetic. Every key of the chunk goes through
//   a group of four (a partial group repeats its last key), and each (query, key) sum is reduced by the
//   same hadd tree, so a score does not depend on which other rows or keys shared the pass (batch
//   invariance).
//   Then per query row: the max, exp256 of the shifted scores, the running sum; and the output rows
//   that see the same keys (one token's query heads, or tokens of a prefill tile past the chunk), up to
//   three at a time and 16 floats at a time, kept in registers while the visible value rows (each
//   converted once for them) are added in.
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

template <bool F16>
void attn_block_x86_t(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, int64_t stride,
                      int32_t n) {
  const bool vec = hd % 8 == 0;
  LLMOPT_CHECK_MSG(vec || hd <= 512, "attention: head size must be a multiple of 8 or at most 512");
  const int32_t rows = a.n_tok * a.group;
  alignas(32) float s[kAttnMaxRows][kAttnChunk + 4];  // + 4: the last group of four may run past n
  alignas(32) float p[kAttnMaxRows][kAttnChunk];
  float cr[kAttnMaxRows];
  float tmp[512];
  auto q_row = [&](int32_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * hd; };
  auto o_row = [&](int32_t r) { return a.o + (r / a.group) * a.o_stride + (r % a.group) * hd; };
  auto vis_of = [&](int32_t r) { return std::min(n, a.n_vis[r / a.group]); };
  // Scores of every row, over the keys its token may see (rounded up to groups of four; a row whose
  // token sees fewer keys than its partners' gets scores it then masks). Rows go three at a time (a
  // GQA triple is one token's; otherwise the three may span tokens of a prefill tile), the last one or
  // two in a pair or alone.
  int32_t r3 = 0;
  if (vec) {
    for (; r3 + 3 <= rows; r3 += 3) {
      const int32_t nk = std::max({vis_of(r3), vis_of(r3 + 1), vis_of(r3 + 2)});
      for (int32_t j = 0; j < nk; j += 4) {
        scores_3x4<F16>(q_row(r3), q_row(r3 + 1), q_row(r3 + 2), k, stride, j, n, hd, scale, s[r3], s[r3 + 1],
                        s[r3 + 2]);
      }
    }
  }
  for (int32_t r = r3; r < rows; r += 2) {
    const int32_t rb = std::min(r + 1, rows - 1);
    const int32_t nk = std::max(vis_of(r), vis_of(rb));
    if (vec && rb == r) {
      for (int32_t j = 0; j < nk; j += 4) scores_1x4<F16>(q_row(r), k, stride, j, n, hd, scale, s[r]);
    } else if (vec) {
      for (int32_t j = 0; j < nk; j += 4) {
        scores_2x4<F16>(q_row(r), q_row(rb), k, stride, j, n, hd, scale, s[r], s[rb]);
      }
    } else {
      for (int32_t x : {r, rb}) {
        for (int32_t j = 0; j < vis_of(x); ++j) {
          s[x][j] = dot_f32_x86(q_row(x), kv_row_f32<F16>(k, stride, j, hd, tmp), hd) * scale;
        }
      }
    }
  }
  // Per row: the max, the probabilities p of the visible keys, the running sum.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t vis = vis_of(r);
    cr[r] = 1.0f;
    if (vis <= 0) continue;
    float* sr = s[r];
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
    _mm256_store_ps(p[r], p0);
    _mm256_store_ps(p[r] + 8, p1);
    a.l[r] = a.l[r] * c + hsum(_mm256_add_ps(p0, p1));
    a.m[r] = mx;
    cr[r] = c;
  }
  // Output: o = o * c + sum_j p_j v_j over the visible keys, up to three rows that see the same keys
  // at a time (a token's query heads, or rows of consecutive tokens of a prefill tile that see the
  // whole chunk), so each value vector is converted once for them.
  for (int32_t r = 0; r < rows;) {
    const int32_t vis = vis_of(r);
    if (vis <= 0) {
      ++r;
      continue;
    }
    if (!vec) {
      float* oi = o_row(r);
      for (int64_t d = 0; d < hd; ++d) oi[d] *= cr[r];
      for (int32_t j = 0; j < vis; ++j) axpy_f32_x86(p[r][j], kv_row_f32<F16>(v, stride, j, hd, tmp), oi, hd);
      ++r;
      continue;
    }
    int nr = 1;
    while (nr < 3 && r + nr < rows && vis_of(r + nr) == vis) ++nr;
    float* o[3] = {o_row(r), nr > 1 ? o_row(r + 1) : nullptr, nr > 2 ? o_row(r + 2) : nullptr};
    const float* pr[3] = {p[r], nr > 1 ? p[r + 1] : nullptr, nr > 2 ? p[r + 2] : nullptr};
    accumulate_values<F16>(o, pr, cr + r, nr, v, stride, hd, vis);
    r += nr;
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
