// Vector activation functions (GELU, SwiGLU, softmax) with a 256-bit exp. Included only by the x86 ISA
// translation units; internal linkage like matmul_x86.h.
//   exp(x): x clamped to [-87.3, 88.3], n = round(x / ln2), r = x - n ln2 (ln2 in two parts), a
//           degree-6 polynomial for e^r on |r| <= ln2 / 2 (Cephes expf's coefficients), times 2^n
//           built in the exponent bits; about 2 ulp.
//   GELU (tanh form): 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
//   SwiGLU: silu(g) * up = g / (1 + exp(-g)) * up.
// The results differ from the scalar references (std::tanh, std::exp) by a few ulp; tests bound it.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n in the exponent bits: n is in [-126, 127] after the clamp.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline __m256 gelu256(__m256 v) {
  const __m256 c0 = _mm256_set1_ps(-2.0f * 0.79788456080286535588f);
  const __m256 c1 = _mm256_set1_ps(0.044715f);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_mul_ps(_mm256_mul_ps(c0, v), _mm256_fmadd_ps(_mm256_mul_ps(c1, v), v, one));
  return _mm256_div_ps(v, _mm256_add_ps(one, exp256(t)));
}

// The last n % 8 elements go through the same vector code (zero-padded), so an element's result
// does not depend on where it sits in the call: a matmul epilogue may apply GELU to any piece of a row.
void gelu_x86(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu256(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float t[8] = {};
    std::memcpy(t, x + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(t, gelu256(_mm256_load_ps(t)));
    std::memcpy(x + i, t, static_cast<size_t>(n - i) * sizeof(float));
  }
}

// Softmax as ref::softmax_inplace (max subtracted, sum in double, all-masked rows -> 0) with exp256;
// -inf entries (masked) give exactly 0.
void softmax_x86(float* x, int64_t n) {
  if (n <= 0) return;
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vm = ninf;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
  float mx = hmax(vm);
  for (; i < n; ++i) mx = std::fmax(mx, x[i]);
  if (mx == -std::numeric_limits<float>::infinity()) {
    for (int64_t j = 0; j < n; ++j) x[j] = 0.0f;
    return;
  }
  const __m256 vmx = _mm256_set1_ps(mx);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(v, vmx)), _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
    _mm256_storeu_ps(x + i, e);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const __m256 inv = _mm256_set1_ps(static_cast<float>(1.0 / sum));
  i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
  for (; i < n; ++i) x[i] *= static_cast<float>(1.0 / sum);
}

inline __m256 swiglu256(__m256 g, __m256 u) {
  const __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_xor_ps(g, _mm256_set1_ps(-0.0f)))));
  return _mm256_mul_ps(s, u);
}

// The tail as in gelu_x86: every element takes the vector code, wherever it sits.
void swiglu_x86(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, swiglu256(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    alignas(32) float g[8] = {}, u[8] = {};
    std::memcpy(g, gate + i, static_cast<size_t>(n - i) * sizeof(float));
    std::memcpy(u, up + i, static_cast<size_t>(n - i) * sizeof(float));
    _mm256_store_ps(g, swiglu256(_mm256_load_ps(g), _mm256_load_ps(u)));
    std::memcpy(out + i, g, static_cast<size_t>(n - i) * sizeof(float));
  }
}

}  // namespace
}  // namespace llmopt::kernels
