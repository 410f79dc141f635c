// Float-weight tiles (f32 / f16 / bf16 against f32 activations) and the k-blocked loop that batches
// use for long rows. Every output element keeps N lane sums (L::kN: 8 with 256-bit vectors, 16 with
// 512-bit ones, per ISA), lane j adding w[c] * x[c] for the columns c = j (mod N) in increasing order
// with one fma each, then the tail past the last multiple of N (zero-padded), then one horizontal sum
// (L::hsum) and the bias: the same operations whatever the tile,
// the batch or the k-blocking (lane sums are kept exactly in memory between k-blocks), so a row's
// result never depends on the other rows of the call. Included only through matmul_x86.h (internal
// linkage, see there).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

// The 256-bit lanes (AVX2); the 512-bit ones are in lanes512_x86.h (AVX-512 translation units only).
struct Lanes8 {
  using V = __m256;
  static constexpr int kN = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  template <class W>
  static V load_w(const uint8_t* row, int64_t c) {
    return W::load8(row, c);
  }
  static float hsum(V v) { return kernels::hsum(v); }
};

template <class W, class L = Lanes8>
struct FloatKernel {
  using V = typename L::V;
  static constexpr int kN = L::kN;
  // Batched tile: 4 weight rows x 3 activation rows = 12 accumulators with 16 vector registers
  // (measured ~1.4x the 2 x 4 tile at 16-64 rows); 4 x 6 = 24 with the 32 of AVX-512, which halves
  // the activation loads per fma.
  static constexpr int kTileR = 4, kTileM = kN == 16 ? 6 : 3;
  static constexpr int kDecodeR = 8;  // weight rows per decode (m = 1) tile: measured best per kernel

  // Columns [c0, c1) of the tile's lane sums (c0 and, unless last, c1 multiples of N). io: the R x M
  // lane sums (N floats each) carried between k-blocks, read unless first, written unless last; the
  // last block adds the tail and writes y.
  template <int R, int M>
  static void tile_part(const MatmulArgs& a, int64_t r0, int64_t i0, int64_t c0, int64_t c1, float* io, bool first,
                        bool last) {
    const int64_t k = a.k;
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a.w_row(r0 + r);
    const float* xs[M];
    for (int i = 0; i < M; ++i) xs[i] = a.x + (i0 + i) * k;
    V acc[R][M];
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < M; ++i) acc[r][i] = first ? L::zero() : L::loadu(io + (r * M + i) * kN);
    }
    // Far prefetches go whole tiles ahead (the rows are contiguous, so the tiles after this one follow
    // its last row), at least kPrefetchBytes: a fixed distance along each row would land inside this
    // same tile for short rows, too little ahead to hide the memory latency (measured: f16 768-long
    // rows, decode, 2 threads: 24 -> 31 GB/s).
    const int64_t tile_bytes = R * static_cast<int64_t>(a.w_row_bytes);
    const int64_t ahead = tile_bytes * ((kPrefetchBytes + tile_bytes - 1) / tile_bytes);
    int64_t c = c0;
    for (; c + kN <= c1; c += kN) {
      if constexpr (M <= kPrefetchMaxM && W::kBytes < 4) {  // f16 / bf16 (measured: f32 decode is slower with it)
        if (c % 16 == 0) {  // once per 32 bytes
          for (int r = 0; r < R; ++r) {
            _mm_prefetch(reinterpret_cast<const char*>(rows[r] + W::kBytes * c + ahead), _MM_HINT_T1);
            _mm_prefetch(reinterpret_cast<const char*>(rows[r] + W::kBytes * c + kPrefetchNear), _MM_HINT_T0);
          }
        }
      }
      V xv[M];
      for (int i = 0; i < M; ++i) xv[i] = L::loadu(xs[i] + c);
      for (int r = 0; r < R; ++r) {
        const V wv = L::template load_w<W>(rows[r], c);
        for (int i = 0; i < M; ++i) acc[r][i] = L::fmadd(wv, xv[i], acc[r][i]);
      }
    }
    if (!last) {
      for (int r = 0; r < R; ++r) {
        for (int i = 0; i < M; ++i) L::storeu(io + (r * M + i) * kN, acc[r][i]);
      }
      return;
    }
    if (c < k) {
      // The last k % N elements, zero-padded to a full vector.
      const int n = static_cast<int>(k - c);
      V xv[M];
      for (int i = 0; i < M; ++i) {
        float t[kN] = {};
        std::memcpy(t, xs[i] + c, static_cast<size_t>(n) * 4);
        xv[i] = L::loadu(t);
      }
      for (int r = 0; r < R; ++r) {
        uint8_t t[4 * kN] = {};
        std::memcpy(t, rows[r] + W::kBytes * c, static_cast<size_t>(n) * W::kBytes);
        const V wv = L::template load_w<W>(t, 0);
        for (int i = 0; i < M; ++i) acc[r][i] = L::fmadd(wv, xv[i], acc[r][i]);
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < M; ++i) {
        const float v = L::hsum(acc[r][i]);
        a.y[(i0 + i) * a.n_out + r0 + r] = a.bias != nullptr ? v + a.bias[r0 + r] : v;
      }
    }
  }

  template <int R, int M>
  static void tile(const MatmulArgs& a, int64_t r0, int64_t i0) {
    tile_part<R, M>(a, r0, i0, 0, a.k, nullptr, true, true);
  }
};

// Batches of float weights with long rows (matmul_x86.h decides which): blocks of activation rows
// whose whole rows fit in about kFloatXBlockBytes (they stay in L2), and for each group of 4 weight
// rows, k-blocks of kFloatKcBytes of each row (the 16 KiB of one block of 4 rows stay in L1 while the
// block's activation tiles go by). Without the k-blocks, 4 weight rows of 4096 f32 (64 KiB) overflow L1 and every tile
// reads them from L2 again (measured with bench_kernels, f32 4096 x 4096, m = 64: 19-20 -> 24-25
// GMAC/s per core in two of three rounds; GPT-2's 3072-long rows: unchanged).
constexpr int64_t kFloatKcBytes = 4096;
constexpr int64_t kFloatKBlockedMinM = 6;
template <class W>
constexpr int64_t float_kc() {
  return kFloatKcBytes / W::kBytes;
}
constexpr int64_t kFloatXBlockBytes = int64_t{192} << 10;

template <class W, class L>
void float_rows_kblocked(const MatmulArgs& a, int64_t r0, int64_t r1) {
  using K = FloatKernel<W, L>;
  constexpr int64_t kMaxMc = 63;
  const int64_t k = a.k;
  const int64_t mc = std::clamp<int64_t>(kFloatXBlockBytes / (k * 4) / K::kTileM * K::kTileM, K::kTileM, kMaxMc);
  // Lane sums carried between k-blocks: activation row li of the block owns io[li * 4N, li * 4N + 4N)
  // (4 weight rows x N lanes); a tile of rows [li, li + M) uses the contiguous slots from li * 4N.
  alignas(64) float io[kMaxMc * 4 * L::kN];
  auto rows_group = [&]<int R>(int64_t r, int64_t i0, int64_t i1) {
    for (int64_t c0 = 0; c0 < k; c0 += float_kc<W>()) {
      const int64_t c1 = std::min(k, c0 + float_kc<W>());
      const bool first = c0 == 0, last = c1 == k;
      for (int64_t i = i0; i < i1;) {
        float* slot = io + (i - i0) * 4 * L::kN;
        switch (std::min<int64_t>(i1 - i, K::kTileM)) {
          case K::kTileM:
            K::template tile_part<R, K::kTileM>(a, r, i, c0, c1, slot, first, last);
            i += K::kTileM;
            break;
          case 2:
            K::template tile_part<R, 2>(a, r, i, c0, c1, slot, first, last);
            i += 2;
            break;
          default:
            K::template tile_part<R, 1>(a, r, i, c0, c1, slot, first, last);
            i += 1;
            break;
        }
      }
    }
  };
  for (int64_t i0 = 0; i0 < a.m; i0 += mc) {
    const int64_t i1 = std::min(a.m, i0 + mc);
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) rows_group.template operator()<4>(r, i0, i1);
    for (; r < r1; ++r) rows_group.template operator()<1>(r, i0, i1);
  }
}

}  // namespace
}  // namespace llmopt::kernels
