// The 512-bit shape of the regrouped float tiles (r16f_x86.h): a group is one vector, so a tile of two
// groups x 12 activation rows holds 24 accumulators (two weight loads and 12 broadcasts per k), and
// the activation rows are packed with 16 x 16 register transposes. Passes of 1 MiB of activations
// (AVX-512 server cores have L2s of 1-2 MiB). Included only by the AVX-512 translation units
// (avx512.cc, amx.cc); internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/x86/lanes512_x86.h"
#include "kernels/x86/r16f_x86.h"

namespace llmopt::kernels {
namespace {

template <>
struct R16fShape<Lanes16> {
  static constexpr int kGroups = 2, kRows = 12;
  static constexpr int64_t kPassBytes = int64_t{1} << 20;
  // 16 columns of the tile's rows at a time, transposed in registers.
  static void pack_tile(const float* x, int64_t rows, int64_t k, float* out) {
    constexpr __mmask16 kTileLanes = (1u << kRows) - 1;
    int64_t k0 = 0;
    for (; k0 + 16 <= k; k0 += 16) {
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = i < rows ? _mm512_loadu_ps(x + i * k + k0) : _mm512_setzero_ps();
      transpose16(v);
      for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(out + (k0 + c) * kRows, kTileLanes, v[c]);
    }
    for (; k0 < k; ++k0) {
      for (int i = 0; i < kRows; ++i) out[k0 * kRows + i] = i < rows ? x[i * k + k0] : 0.0f;
    }
  }
};

}  // namespace
}  // namespace llmopt::kernels
