// Flash-style attention step (kernels::attn_block), 256-bit FMA with F16C loads for f16 caches.
// Included only by the x86 ISA translation units; internal linkage like matmul_x86.h.
// Per chunk of up to kAttnChunk keys and per query: the scores four keys at a time (each q vector
// loaded once for four keys, the four sums reduced together), their exponentials with exp256, and the
// output row kept in registers 64 floats at a time while the value rows are added in. Head sizes that
// are not a multiple of 8 take the scalar-loop fallbacks (dot_f32_x86 / axpy_f32_x86 on converted rows).
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

template <bool F16>
void attn_block_x86_t(const float* q, int32_t nq, int64_t hd, float scale, const void* k, const void* v, int64_t stride,
                      int32_t n, float* m, float* l, float* o) {
  alignas(32) float s[kAttnChunk];
  alignas(32) float p[kAttnChunk];
  float tmp[512];
  const bool vec = hd % 8 == 0;
  LLMOPT_CHECK_MSG(vec || hd <= 512, "attention: head size must be a multiple of 8 or at most 512");
  for (int32_t c0 = 0; c0 < n; c0 += kAttnChunk) {
    const int32_t cn = std::min(kAttnChunk, n - c0);
    for (int32_t i = 0; i < nq; ++i) {
      const float* qi = q + i * hd;
      float* oi = o + i * hd;
      // Scores.
      int32_t j = 0;
      if (vec) {
        for (; j + 4 <= cn; j += 4) {
          const int64_t r0 = (c0 + j) * stride;
          __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
                 a3 = _mm256_setzero_ps();
          for (int64_t d = 0; d < hd; d += 8) {
            const __m256 qv = _mm256_loadu_ps(qi + d);
            a0 = _mm256_fmadd_ps(qv, load_kv8<F16>(k, r0 + d), a0);
            a1 = _mm256_fmadd_ps(qv, load_kv8<F16>(k, r0 + stride + d), a1);
            a2 = _mm256_fmadd_ps(qv, load_kv8<F16>(k, r0 + 2 * stride + d), a2);
            a3 = _mm256_fmadd_ps(qv, load_kv8<F16>(k, r0 + 3 * stride + d), a3);
          }
          // hadd(a0, a1) = [a0 pairs, a1 pairs] per 128-bit lane; a second hadd leaves per lane the
          // four partial sums; adding the two lanes gives the four dot products.
          const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
          const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
          _mm_storeu_ps(s + j, _mm_mul_ps(sum, _mm_set1_ps(scale)));
        }
      }
      for (; j < cn; ++j) {
        if (vec) {
          __m256 a = _mm256_setzero_ps();
          for (int64_t d = 0; d < hd; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(qi + d), load_kv8<F16>(k, (c0 + j) * stride + d), a);
          s[j] = hsum(a) * scale;
        } else {
          s[j] = dot_f32_x86(qi, kv_row_f32<F16>(k, stride, c0 + j, hd, tmp), hd) * scale;
        }
      }
      // Unused lanes: -inf scores (no effect on the max) and p = 0.
      for (j = cn; j < kAttnChunk; ++j) s[j] = -INFINITY;
      const __m256 s0 = _mm256_load_ps(s), s1 = _mm256_load_ps(s + 8);
      __m256 mv = _mm256_max_ps(s0, s1);
      __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
      m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
      m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
      const float mx = std::max(m[i], _mm_cvtss_f32(m4));
      // exp(-inf) = 0 for the first chunk; no rescaling while the max stays.
      const float c = mx == m[i] ? 1.0f : std::exp(m[i] - mx);
      const __m256 vm = _mm256_set1_ps(mx);
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256 live0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(cn), lane));
      const __m256 live1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(cn - 8), lane));
      const __m256 p0 = _mm256_and_ps(exp256(_mm256_sub_ps(s0, vm)), live0);
      const __m256 p1 = _mm256_and_ps(exp256(_mm256_sub_ps(s1, vm)), live1);
      _mm256_store_ps(p, p0);
      _mm256_store_ps(p + 8, p1);
      l[i] = l[i] * c + hsum(_mm256_add_ps(p0, p1));
      m[i] = mx;
      // Output: o = o * c + sum_j p_j v_j.
      const __m256 vc = _mm256_set1_ps(c);
      int64_t d0 = 0;
      if (vec) {
        for (; d0 + 64 <= hd; d0 += 64) {
          __m256 acc[8];
          for (int t = 0; t < 8; ++t) acc[t] = _mm256_loadu_ps(oi + d0 + 8 * t);
          if (c != 1.0f) {
            for (int t = 0; t < 8; ++t) acc[t] = _mm256_mul_ps(acc[t], vc);
          }
          for (j = 0; j < cn; ++j) {
            const __m256 pj = _mm256_set1_ps(p[j]);
            const int64_t r = (c0 + j) * stride + d0;
            for (int t = 0; t < 8; ++t) acc[t] = _mm256_fmadd_ps(pj, load_kv8<F16>(v, r + 8 * t), acc[t]);
          }
          for (int t = 0; t < 8; ++t) _mm256_storeu_ps(oi + d0 + 8 * t, acc[t]);
        }
        for (; d0 + 8 <= hd; d0 += 8) {
          __m256 acc = _mm256_mul_ps(_mm256_loadu_ps(oi + d0), vc);
          for (j = 0; j < cn; ++j) {
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), load_kv8<F16>(v, (c0 + j) * stride + d0), acc);
          }
          _mm256_storeu_ps(oi + d0, acc);
        }
      }
      if (d0 < hd) {  // !vec
        for (int64_t d = d0; d < hd; ++d) oi[d] *= c;
        for (j = 0; j < cn; ++j) {
          const float* vr = kv_row_f32<F16>(v, stride, c0 + j, hd, tmp);
          axpy_f32_x86(p[j], vr + d0, oi + d0, hd - d0);
        }
      }
    }
  }
}

void attn_block_x86(const float* q, int32_t nq, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                    int64_t stride, int32_t n, float* m, float* l, float* o) {
  if (kv_f16) {
    attn_block_x86_t<true>(q, nq, hd, scale, k, v, stride, n, m, l, o);
  } else {
    attn_block_x86_t<false>(q, nq, hd, scale, k, v, stride, n, m, l, o);
  }
}

}  // namespace
}  // namespace llmopt::kernels
