// The tile kernels of the x86 matmuls: a tile is R weight rows x M activation rows, for i8_ch rows
// against int8 activation rows, with the decode prefetch (the constants are shared with the float
// kernels of tiles_float_x86.h and the block-quantized ones of tiles_blockdot_x86.h). Included only
// through matmul_x86.h (internal linkage, see there); the row loops that pick the tile shapes and the
// type table are in matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

// Decode and small batches stream every weight once and are limited by how many cache misses
// a core keeps in flight: the tiles prefetch each weight row far ahead into L2 and near ahead into L1
// (measured on gpt2-124M decode: Q8_0 +30%, Q4_0 +15%, i8_ch +25%, F16 +8% over no prefetch; F32 -9%,
// so not for F32).
constexpr int64_t kPrefetchBytes = 8192;
constexpr int64_t kPrefetchNear = 256;
constexpr int kPrefetchMaxM = 16;  // tiles with at most this many activation rows prefetch (quantized tiles;
                                    // measured: pp4 +35%, pp8 and pp512 unchanged)

// DType::kI8Ch (W8A8): int8 weight rows of k bytes with one f32 scale per row, against int8 activation
// rows (k_pad bytes, zero-padded) with one scale per row. The int32 sum over the whole row is exact,
// then y = float(sum) * (w_scale * x_scale): the same operations as ref::matmul_rows_i8ch.
template <class Ops>
struct I8Kernel {
  static constexpr int kTileR = 1, kTileM = 8;
  static constexpr int kDecodeR = 8;
  template <int R, int M>
  static void tile(const MatmulArgs& a, int64_t r0, int64_t i0) {
    const int64_t k = a.k;
    const int8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = reinterpret_cast<const int8_t*>(a.w_row(r0 + r));
    const int8_t* xs[M];
    for (int i = 0; i < M; ++i) xs[i] = a.xi8 + (i0 + i) * a.k_pad;
    __m256i acc[R][M];
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < M; ++i) acc[r][i] = _mm256_setzero_si256();
    auto step = [&](const __m256i (&wq)[R], int64_t c) {
      for (int r = 0; r < R; ++r) {
        const __m256i u = _mm256_sign_epi8(wq[r], wq[r]);  // |w| as u8 (codes are within +-127)
        for (int i = 0; i < M; ++i) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs[i] + c));
          acc[r][i] = _mm256_add_epi32(acc[r][i], Ops::dot_u8s8(u, _mm256_sign_epi8(xv, wq[r])));
        }
      }
    };
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
      if constexpr (M <= kPrefetchMaxM) {
        for (int r = 0; r < R; ++r) {
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + c + kPrefetchBytes), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + c + kPrefetchNear), _MM_HINT_T0);
        }
      }
      __m256i wq[R];
      for (int r = 0; r < R; ++r) wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[r] + c));
      step(wq, c);
    }
    if (c < k) {  // the last k % 32 weights, zero-padded (the activation rows are padded already)
      __m256i wq[R];
      for (int r = 0; r < R; ++r) {
        alignas(32) int8_t t[32] = {};
        std::memcpy(t, rows[r] + c, static_cast<size_t>(k - c));
        wq[r] = _mm256_load_si256(reinterpret_cast<const __m256i*>(t));
      }
      step(wq, c);
    }
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < M; ++i) {
        const float s = a.w_scale[r0 + r] * a.x_scale[i0 + i];
        const float v = static_cast<float>(hsum_i32(acc[r][i]));
        a.y[(i0 + i) * a.n_out + r0 + r] = a.bias != nullptr ? std::fma(v, s, a.bias[r0 + r]) : v * s;
      }
    }
  }
};

// The column tiles' loop over weight rows [r0, r1) and activation column groups [0, n_groups): passes
// over about 128 KiB of activations (group_bytes per group), which stay in L2 while this thread's weight
// rows go by; kR-row tiles (each stays in L1 across a pass's groups), then single rows.
// tile.template operator()<R>(r, g) computes one tile.
template <int kR, class Tile>
void column_passes(int64_t r0, int64_t r1, int64_t n_groups, int64_t group_bytes, Tile&& tile) {
  const int64_t chunk = std::max<int64_t>(1, (int64_t{128} << 10) / std::max<int64_t>(group_bytes, 1));
  for (int64_t g0 = 0; g0 < n_groups; g0 += chunk) {
    const int64_t g1 = std::min(n_groups, g0 + chunk);
    int64_t r = r0;
    for (; r + kR <= r1; r += kR) {
      for (int64_t g = g0; g < g1; ++g) tile.template operator()<kR>(r, g);
    }
    for (; r < r1; ++r) {
      for (int64_t g = g0; g < g1; ++g) tile.template operator()<1>(r, g);
    }
  }
}

// kI8Ch for batches of kMinInterleaveRows rows or more: 8 activation rows interleaved by 4-byte groups
// (MatmulArgs::xi8x8), each group of 4 weight codes broadcast to the 8 lanes, as the block-dot column
// tiles do. The int32 row sums are exact, so the results are I8Kernel's, bit for bit.
template <class Ops>
struct I8ColKernel {
  static constexpr int kColR = 4;

  template <int R>
  static void by_cols(const MatmulArgs& a, int64_t r0, int64_t cg) {
    const int64_t n_chunks = a.k_pad / 32;
    const int8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = reinterpret_cast<const int8_t*>(a.w_row(r0 + r));
    const int8_t* x = a.xi8x8 + cg * n_chunks * 256;
    __m256i isum[R];
    for (int r = 0; r < R; ++r) isum[r] = _mm256_setzero_si256();
    for (int64_t c = 0; c < n_chunks; ++c) {
      const int8_t* codes[R];
      alignas(32) int8_t tail[R][32];
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + 32 * c + kPrefetchBytes), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + 32 * c + kPrefetchNear), _MM_HINT_T0);
        if (32 * c + 32 <= a.k) {
          codes[r] = rows[r] + 32 * c;
        } else {  // the last k % 32 weights, zero-padded (the activations are padded already)
          std::memset(tail[r], 0, 32);
          std::memcpy(tail[r], rows[r] + 32 * c, static_cast<size_t>(a.k - 32 * c));
          codes[r] = tail[r];
        }
      }
      // A code of -128 cannot take the activation's sign (see tiles_blockdot_x86.h): |w| goes in instead.
      __m256i any = _mm256_setzero_si256();
      for (int r = 0; r < R; ++r) {
        any = _mm256_or_si256(any, _mm256_cmpeq_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes[r])),
                                                     _mm256_set1_epi8(-128)));
      }
      const bool abs_w = !_mm256_testz_si256(any, any);
      for (int g = 0; g < 8; ++g) {
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + c * 256 + g * 32));
        const __m256i ax = _mm256_sign_epi8(xv, xv);
        for (int r = 0; r < R; ++r) {
          int32_t g4;
          std::memcpy(&g4, codes[r] + 4 * g, 4);
          const __m256i wv = _mm256_set1_epi32(g4);
          const __m256i p = abs_w ? Ops::dot_u8s8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv))
                                  : Ops::dot_u8s8(ax, _mm256_sign_epi8(wv, xv));
          isum[r] = _mm256_add_epi32(isum[r], p);
        }
      }
    }
    const __m256 xs = _mm256_loadu_ps(a.x_scale8 + cg * 8);
    const int64_t n_cols = std::min<int64_t>(8, a.m - cg * 8);
    for (int r = 0; r < R; ++r) {
      const __m256 sc = _mm256_mul_ps(_mm256_set1_ps(a.w_scale[r0 + r]), xs);
      const __m256 v = _mm256_cvtepi32_ps(isum[r]);
      const __m256 y = a.bias != nullptr ? _mm256_fmadd_ps(v, sc, _mm256_set1_ps(a.bias[r0 + r])) : _mm256_mul_ps(v, sc);
      alignas(32) float out[8];
      _mm256_store_ps(out, y);
      for (int64_t i = 0; i < n_cols; ++i) a.y[(cg * 8 + i) * a.n_out + r0 + r] = out[i];
    }
  }

  static void run(const MatmulArgs& a, int64_t r0, int64_t r1);
};

}  // namespace
}  // namespace llmopt::kernels
