// RMSNorm, LayerNorm and the f32 -> f16 row conversion, 256-bit AVX2/F16C. Included only by the x86
// ISA translation units; internal linkage like matmul_x86.h.
//   Norms: the statistics are accumulated in double, as the reference (and GGML) does, in four vector
//   accumulators (so the order of the additions, and at most the last bits of the statistics, differ
//   from the reference's); each output is then the reference's own float expression, (x - mean) *
//   scale * w + b or (x * scale) * w, without contraction into fma.
//   f16: vcvtps2ph with round-to-nearest-even, bit-identical to fp32_to_fp16 (infinities, NaNs with
//   their top payload bits and the quiet bit, subnormals, overflow to infinity).
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"

namespace llmopt::kernels {
namespace {

inline double hsum_pd(__m256d v) {
  const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// sum of f(x[i]) in double over n elements, f: the identity (kSquares false) or the square.
template <bool kSquares>
inline double sum_pd(const float* x, int64_t n, double shift) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
  const __m256d vs = _mm256_set1_pd(shift);
  auto term = [&](__m128 v) {
    const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(v), vs);
    return kSquares ? _mm256_mul_pd(d, d) : d;
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_add_pd(a0, term(_mm256_castps256_ps128(x0)));
    a1 = _mm256_add_pd(a1, term(_mm256_extractf128_ps(x0, 1)));
    a2 = _mm256_add_pd(a2, term(_mm256_castps256_ps128(x1)));
    a3 = _mm256_add_pd(a3, term(_mm256_extractf128_ps(x1, 1)));
  }
  double s = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
  for (; i < n; ++i) {
    const double d = static_cast<double>(x[i]) - shift;
    s += kSquares ? d * d : d;
  }
  return s;
}

void rms_norm_x86(const float* x, const float* w, float eps, float* out, int64_t n) {
  LLMOPT_CHECK(n > 0);
  const float mean = static_cast<float>(sum_pd<true>(x, n, 0.0) / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  const __m256 vs = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
  }
  for (; i < n; ++i) out[i] = (x[i] * scale) * w[i];
}

void layer_norm_x86(const float* x, const float* w, const float* b, float eps, float* out, int64_t n) {
  LLMOPT_CHECK(n > 0);
  const double mean = sum_pd<false>(x, n, 0.0) / static_cast<double>(n);
  const double var = sum_pd<true>(x, n, mean) / static_cast<double>(n);
  const float meanf = static_cast<float>(mean);
  const float scale = 1.0f / std::sqrt(static_cast<float>(var) + eps);
  const __m256 vm = _mm256_set1_ps(meanf), vs = _mm256_set1_ps(scale);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 t = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vs), _mm256_loadu_ps(w + i));
    _mm256_storeu_ps(out + i, b != nullptr ? _mm256_add_ps(t, _mm256_loadu_ps(b + i)) : t);
  }
  for (; i < n; ++i) out[i] = b != nullptr ? (x[i] - meanf) * scale * w[i] + b[i] : (x[i] - meanf) * scale * w[i];
}

// dst: any alignment (GGUF tensors need not be 2-byte aligned).
void f32_to_f16_row_x86(const float* src, void* dst, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(src[i]);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

}  // namespace
}  // namespace llmopt::kernels
