// The 512-bit lanes of the float-weight tiles (tiles_float_x86.h's lane policy, Lanes8's counterpart):
// 16 lane sums per output element. Included only by the AVX-512 translation units (avx512.cc, amx.cc),
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

}  // namespace
}  // namespace llmopt::kernels
