// Flash-style attention step (kernels::attn_block) on 512-bit vectors, for head sizes that are a
// multiple of 16; other sizes go to attn_x86.h's 256-bit kernel. Included only by the AVX-512
// translation units (avx512.cc, amx.cc); internal linkage like matmul_x86.h.
//   Scores: every key of the chunk (indices past n repeat key n - 1, whose scores are masked), up to
//   four query rows x four keys per pass so that each key vector is loaded and converted once for
//   the rows. Each (row, key) sum keeps 16 lane sums over the head (one fma per 16 dimensions, in
//   order) and one fixed tree of shuffles and adds turns the 16 keys' lane sums into one vector of 16
//   scores, so a score does not depend on which rows shared the pass (batch invariance).
//   Softmax per row on that vector: masked max, exp512, the running sum.
//   Output: a token's query rows up to four at a time and 64 dimensions at a time kept in registers
//   while each visible value row (converted once for the rows) is added in, in key order.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/kernels.h"
#include "kernels/x86/attn_x86.h"

namespace llmopt::kernels {
namespace {

template <bool F16>
inline __m512 load_kv16(const void* base, int64_t off) {
  if constexpr (F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + off)));
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(base) + off);
  }
}

// exp256's polynomial on 16 lanes.
inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// Four keys' lane sums a0..a3 -> one vector whose 128-bit lane L holds, in element i, the sum of
// key i's elements 4L..4L+3.
inline __m512 reduce_keys4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const __m512 s01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 s23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512d d01 = _mm512_castps_pd(s01), d23 = _mm512_castps_pd(s23);
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(d01, d23)), _mm512_castpd_ps(_mm512_unpackhi_pd(d01, d23)));
}

// Four reduce_keys4 results (keys 0-3, 4-7, 8-11, 12-15) -> the 16 scores, key j in element j.
inline __m512 reduce_keys16(__m512 g0, __m512 g1, __m512 g2, __m512 g3) {
  const __m512 z01 = _mm512_add_ps(_mm512_shuffle_f32x4(g0, g1, 0x88), _mm512_shuffle_f32x4(g0, g1, 0xdd));
  const __m512 z23 = _mm512_add_ps(_mm512_shuffle_f32x4(g2, g3, 0x88), _mm512_shuffle_f32x4(g2, g3, 0xdd));
  return _mm512_add_ps(_mm512_shuffle_f32x4(z01, z23, 0x88), _mm512_shuffle_f32x4(z01, z23, 0xdd));
}

// Scores (times scale) of NR query rows against all kAttnChunk keys (index j >= n reads key n - 1).
template <bool F16, int NR>
inline void scores512(const float* const* q, const void* k, int64_t stride, int32_t n, int64_t hd, float scale,
                      __m512* out) {
  __m512 groups[NR][4];
  for (int g = 0; g < 4; ++g) {
    if (4 * g >= n) {  // keys past the chunk: their scores are masked, whatever they hold
      for (int i = 0; i < NR; ++i) groups[i][g] = _mm512_setzero_ps();
      continue;
    }
    int64_t r[4];
    for (int x = 0; x < 4; ++x) r[x] = std::min(4 * g + x, n - 1) * stride;
    __m512 acc[NR][4];
    for (int i = 0; i < NR; ++i) {
      for (int x = 0; x < 4; ++x) acc[i][x] = _mm512_setzero_ps();
    }
    for (int64_t d = 0; d < hd; d += 16) {
      __m512 kv[4];
      for (int x = 0; x < 4; ++x) kv[x] = load_kv16<F16>(k, r[x] + d);
      for (int i = 0; i < NR; ++i) {
        const __m512 qv = _mm512_loadu_ps(q[i] + d);
        for (int x = 0; x < 4; ++x) acc[i][x] = _mm512_fmadd_ps(qv, kv[x], acc[i][x]);
      }
    }
    for (int i = 0; i < NR; ++i) groups[i][g] = reduce_keys4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
  }
  const __m512 vs = _mm512_set1_ps(scale);
  for (int i = 0; i < NR; ++i) {
    out[i] = _mm512_mul_ps(reduce_keys16(groups[i][0], groups[i][1], groups[i][2], groups[i][3]), vs);
  }
}

// o = o * c + sum_{j < vis} p_j v_j for NR rows of one token, ND x 16 dimensions from d0, kept in
// registers while the value rows go by. Every row and dimension takes the same operations in the same
// order (o * c unless c = 1, then one fma per key in key order) whichever rows and dimensions it goes with.
template <bool F16, int NR, int ND>
inline void values512_pass(float* const* o, const float* const* p, const float* c, const void* v, int64_t stride,
                           int64_t d0, int32_t vis) {
  __m512 acc[NR][ND];
  for (int i = 0; i < NR; ++i) {
    for (int x = 0; x < ND; ++x) {
      acc[i][x] = _mm512_loadu_ps(o[i] + d0 + 16 * x);
      if (c[i] != 1.0f) acc[i][x] = _mm512_mul_ps(acc[i][x], _mm512_set1_ps(c[i]));
    }
  }
  for (int32_t j = 0; j < vis; ++j) {
    __m512 vv[ND];
    for (int x = 0; x < ND; ++x) vv[x] = load_kv16<F16>(v, j * stride + d0 + 16 * x);
    for (int i = 0; i < NR; ++i) {
      const __m512 pv = _mm512_set1_ps(p[i][j]);
      for (int x = 0; x < ND; ++x) acc[i][x] = _mm512_fmadd_ps(pv, vv[x], acc[i][x]);
    }
  }
  for (int i = 0; i < NR; ++i) {
    for (int x = 0; x < ND; ++x) _mm512_storeu_ps(o[i] + d0 + 16 * x, acc[i][x]);
  }
}

// The whole head (a multiple of 16): 64 dimensions per pass, then 16 at a time.
template <bool F16, int NR>
inline void values512(float* const* o, const float* const* p, const float* c, const void* v, int64_t stride,
                      int64_t hd, int32_t vis) {
  int64_t d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64) values512_pass<F16, NR, 4>(o, p, c, v, stride, d0, vis);
  for (; d0 < hd; d0 += 16) values512_pass<F16, NR, 1>(o, p, c, v, stride, d0, vis);
}

template <bool F16>
void attn_block512_t(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, int64_t stride,
                     int32_t n) {
  static_assert(kAttnChunk == 16, "one 512-bit vector of scores per row");
  const int32_t rows = a.n_tok * a.group;
  alignas(64) float p[kAttnMaxRows][kAttnChunk];
  float cr[kAttnMaxRows];
  auto q_row = [&](int32_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * hd; };
  auto o_row = [&](int32_t r) { return a.o + (r / a.group) * a.o_stride + (r % a.group) * hd; };
  auto vis_of = [&](int32_t r) { return std::min(n, a.n_vis[r / a.group]); };
  // Scores and softmax, up to four rows at a time (the rows may belong to different tokens).
  for (int32_t r0 = 0; r0 < rows; r0 += 4) {
    const int nr = std::min(4, rows - r0);
    const float* q[4];
    for (int i = 0; i < nr; ++i) q[i] = q_row(r0 + i);
    __m512 s[4];
    switch (nr) {
      case 4:
        scores512<F16, 4>(q, k, stride, n, hd, scale, s);
        break;
      case 3:
        scores512<F16, 3>(q, k, stride, n, hd, scale, s);
        break;
      case 2:
        scores512<F16, 2>(q, k, stride, n, hd, scale, s);
        break;
      default:
        scores512<F16, 1>(q, k, stride, n, hd, scale, s);
        break;
    }
    for (int i = 0; i < nr; ++i) {
      const int32_t r = r0 + i;
      const int32_t vis = vis_of(r);
      cr[r] = 1.0f;
      if (vis <= 0) continue;
      const __mmask16 live = static_cast<__mmask16>((1u << vis) - 1u);
      const __m512 sr = _mm512_mask_mov_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), live, s[i]);
      const float mx = std::max(a.m[r], _mm512_reduce_max_ps(sr));
      // exp(-inf) = 0 for the first chunk; no rescaling while the max stays.
      const float c = mx == a.m[r] ? 1.0f : std::exp(a.m[r] - mx);
      const __m512 pv = _mm512_maskz_mov_ps(live, exp512(_mm512_sub_ps(sr, _mm512_set1_ps(mx))));
      _mm512_store_ps(p[r], pv);
      a.l[r] = a.l[r] * c + _mm512_reduce_add_ps(pv);
      a.m[r] = mx;
      cr[r] = c;
    }
  }
  // Output, a token's query rows up to four at a time.
  for (int32_t t = 0; t < a.n_tok; ++t) {
    const int32_t r_end = (t + 1) * a.group;
    const int32_t vis = vis_of(t * a.group);
    if (vis <= 0) continue;
    for (int32_t r = t * a.group; r < r_end;) {
      const int nr = std::min(4, r_end - r);
      float* o[4];
      const float* pr[4];
      for (int i = 0; i < nr; ++i) o[i] = o_row(r + i), pr[i] = p[r + i];
      switch (nr) {
        case 4:
          values512<F16, 4>(o, pr, cr + r, v, stride, hd, vis);
          break;
        case 3:
          values512<F16, 3>(o, pr, cr + r, v, stride, hd, vis);
          break;
        case 2:
          values512<F16, 2>(o, pr, cr + r, v, stride, hd, vis);
          break;
        default:
          values512<F16, 1>(o, pr, cr + r, v, stride, hd, vis);
          break;
      }
      r += nr;
    }
  }
}

// Head sizes that are a multiple of 16 here; others on the 256-bit kernel.
void attn_block512_x86(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                       int64_t stride, int32_t n) {
  if (hd % 16 != 0) {
    attn_block_x86(a, hd, scale, k, v, kv_f16, stride, n);
  } else if (kv_f16) {
    attn_block512_t<true>(a, hd, scale, k, v, stride, n);
  } else {
    attn_block512_t<false>(a, hd, scale, k, v, stride, n);
  }
}

}  // namespace
}  // namespace llmopt::kernels
