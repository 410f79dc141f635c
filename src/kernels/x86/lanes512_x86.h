// The 512-bit lanes of the float-weight tiles (tiles_float_x86.h's lane policy, Lanes8's counterpart):
// 16 lane sums per output element; and a 16 x 16 float transpose. Included only by the AVX-512 translation units (avx512.cc, amx.cc),
// whose Ops name it as their FloatLanes; internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

struct Lanes16 {
  using V = __m512;
  static constexpr int kN = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  // 16 weights from element c of a row, as f32 (exact for f16 and bf16).
  template <class W>
  static V load_w(const uint8_t* row, int64_t c) {
    if constexpr (std::is_same_v<W, WF32>) {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(row + 4 * c));
    } else if constexpr (std::is_same_v<W, WF16>) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c)));
    } else {
      static_assert(std::is_same_v<W, WBF16>, "a float weight type");
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * c));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
};

// In place: r[i][j] <- r[j][i] for a 16 x 16 block of floats.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + e], 128-bit lane L: element 4L + e of rows 4k .. 4k + 3.
  __m512 u[16];
  for (int k = 0; k < 4; ++k) {
    const __m512d a0 = _mm512_castps_pd(t[4 * k]), a1 = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d b0 = _mm512_castps_pd(t[4 * k + 2]), b1 = _mm512_castps_pd(t[4 * k + 3]);
    u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
    u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
    u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
    u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
  }
  for (int e = 0; e < 4; ++e) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), v1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + e] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[4 + e] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + e] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

}  // namespace
}  // namespace llmopt::kernels
