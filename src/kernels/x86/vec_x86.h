// Vector kernels of the attention inner loops (q . k and out += p * v), 256-bit FMA. Included only
// by the x86 ISA translation units; internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace llmopt::kernels {
namespace {

float dot_f32_x86(const float* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
}

void axpy_f32_x86(float alpha, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// Four keys at a time share each load of q, and their four sums are reduced together (two hadds)
// instead of one horizontal sum per key; head sizes that are not a multiple of 8 use dot_f32_x86.
void attn_scores_x86(const float* q, const float* k, int64_t stride, int32_t n, int64_t hd, float scale,
                     float* scores) {
  int32_t s = 0;
  if (hd % 8 == 0) {
    for (; s + 4 <= n; s += 4) {
      const float* k0 = k + s * stride;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
             a3 = _mm256_setzero_ps();
      for (int64_t i = 0; i < hd; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), a0);
        a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + stride + i), a1);
        a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 2 * stride + i), a2);
        a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 3 * stride + i), a3);
      }
      // hadd(a0, a1) = [a0 pairs, a1 pairs] per 128-bit lane; a second hadd leaves per lane the four
      // partial sums; adding the two lanes gives the four dot products.
      const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
      const __m128 sum = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
      _mm_storeu_ps(scores + s, _mm_mul_ps(sum, _mm_set1_ps(scale)));
    }
  }
  for (; s < n; ++s) scores[s] = dot_f32_x86(q, k + s * stride, hd) * scale;
}

// out is kept in registers 64 floats at a time while all n value rows are added in.
void attn_accumulate_x86(const float* p, const float* v, int64_t stride, int32_t n, int64_t hd, float* out) {
  int64_t c = 0;
  for (; c + 64 <= hd; c += 64) {
    __m256 acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_loadu_ps(out + c + 8 * j);
    for (int32_t s = 0; s < n; ++s) {
      const __m256 ps = _mm256_set1_ps(p[s]);
      const float* vs = v + s * stride + c;
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(ps, _mm256_loadu_ps(vs + 8 * j), acc[j]);
    }
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out + c + 8 * j, acc[j]);
  }
  if (c < hd) {
    for (int32_t s = 0; s < n; ++s) axpy_f32_x86(p[s], v + s * stride + c, out + c, hd - c);
  }
}

}  // namespace
}  // namespace llmopt::kernels
