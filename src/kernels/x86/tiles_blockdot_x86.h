// Block-quantized weights (one scale per 32 elements) against Q8 activation blocks, with one exact
// integer dot product D_b per block. Every output element is the same sequence of operations:
//     acc = 0; for each block b in order: acc = fma(float(D_b), d_w * d_x, acc)
//                                         acc = fma(m_w, s_x, acc)          (types with an offset)
//     y = acc (+ bias)
// (Q6_K, two scales per block: D_b is two dot products of 16 elements, each with its own d_w),
// computed by one of two kernels, chosen by the batch size only (the result never depends on it):
//  - by weight rows (decode, batches of up to 4 rows; blockdot_rows_x86.h): each block's 8 int32
//    lanes are reduced for 4 weight rows at once;
//  - by activation columns (batches of 5 rows and more): 8 activation rows interleaved by groups of
//    4 bytes (BlockQ8x8), each group of 4 weight codes broadcast to all lanes, so the 8 lanes are 8
//    activation rows, no reduction is needed. A tile is R weight rows x NC such groups: each vector of
//    activations serves R weight rows, each weight group (broadcast or shuffled) NC groups of 8 rows.
//    About 3-4 vector operations per 32 multiply-adds, against 7-8 for the row layout.
//    Weight rows are prefetched ahead as in decode (measured: 8-sequence batched decode of GPT-2 124M
//    Q8_0 +30%, prefill unchanged).
// Types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, q4_1_g128, and the K-quants Q4_K, Q5_K, Q6_K, whose decode
// reads a super-block's scales once for its 8 blocks (by_rows_super4*); on AVX2 also WQ6_KX, Q6_K with
// its codes one byte each, which large batches of regrouped Q6_K restore to (r16q6kx_avx2_x86.h).
// Included only through matmul_x86.h (internal linkage, see there).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/blockdot_rows_x86.h"
#include "kernels/x86/blockdot_traits_x86.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

template <class W, class Ops>
struct BlockDotKernel : BlockDotRows<W, Ops> {
  using BlockDotRows<W, Ops>::run_by_rows;
  // A column tile is kColR weight rows x kColNC groups of 8 activation rows (kColR1 rows when the batch
  // is a single group). More groups share each weight group's broadcast or shuffle, and the 4-bit
  // unpacking, over more products. The shapes are the fastest measured per kind (bench_kernels, one
  // core, GPT-2 shapes, against 4 x 1 before: Q4_0 / Q4_1 53 -> 75-80 GMAC/s at 16-64 rows and 53 -> 60
  // at 8, Q8_0 49 -> 52-55, Q4_K (2 x 3) 55 -> 70-74, Q5_K (4 x 2) 49-50 -> 52-54); Q6_K keeps 4 x 1.
  static constexpr int kColNC = kTwoScales<W>                            ? 1
                                : DirectCodes<W>                         ? 2
                                : kSuperBlocks<W> && kCodeMax<W> > 15     ? 2  // Q5_K
                                                                         : 3;
  static constexpr int kColR = kColNC == 3 ? 2 : 4;
  static constexpr int kColR1 = DirectCodes<W> ? 2 : 4;  // for a single group (measured)
  // The batched tiles read the codes unsigned (Q6_K with its offset).
  static constexpr bool kUnsignedCols = W::kUnsigned || kOffsetCodes<W>;

  // Codes 4G..4G+3 of a block in every 32-bit lane, from its codes 0..15 (lo) and 16..31 (hi), each
  // repeated in both 128-bit halves.
  template <int G>
  static __m256i group(__m256i lo, __m256i hi) {
    return _mm256_shuffle_epi32(G < 4 ? lo : hi, (G % 4) * 0x55);
  }

  // Output elements of weight rows [r0, r0 + R) against the 8 activation rows of each of the NC column
  // groups cg .. cg + NC - 1. Each weight group (broadcast or shuffled) serves NC activation vectors, so
  // the weight-side work is shared by 8 NC activation rows.
  template <int R, int NC>
  static void by_cols(const MatmulArgs& a, int64_t r0, int64_t cg) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a.w_row(r0 + r);
    const BlockQ8x8* xs[NC];
    for (int c = 0; c < NC; ++c) xs[c] = a.xq8 + (cg + c) * nb;
    __m256 acc[NC][R];
    for (int c = 0; c < NC; ++c)
      for (int r = 0; r < R; ++r) acc[c][r] = _mm256_setzero_ps();
    // K-quants: a super-block's scales (Q4_K / Q5_K: d * sc in sup_a, -(dmin * m) in sup_b; Q6_K: its
    // 16 scales in sup_a), decoded once for its 8 blocks.
    [[maybe_unused]] alignas(32) float sup_a[R][16];
    [[maybe_unused]] alignas(32) float sup_b[R][8];
    for (int64_t b = 0; b < nb; ++b) {
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b * W::kBlockBytes + kPrefetchBytes), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b * W::kBlockBytes + kPrefetchNear), _MM_HINT_T0);
      }
      if constexpr (kSuperBlocks<W>) {
        if (b % 8 == 0) {
          for (int r = 0; r < R; ++r) {
            __m256 va, vb;
            W::super_scales(rows[r], b / 8, &va, &vb);
            _mm256_store_ps(sup_a[r], va);
            _mm256_store_ps(kTwoScales<W> ? sup_a[r] + 8 : sup_b[r], vb);
          }
        }
      }
      __m256i isum[NC][R];
      [[maybe_unused]] __m256i isum16[NC][R];
      float d[R], mm[R];
      [[maybe_unused]] float d1[R];
      [[maybe_unused]] __m256i lo[R], hi[R];
      [[maybe_unused]] const uint8_t* codes[R];
      for (int r = 0; r < R; ++r) {
        if constexpr (DirectCodes<W>) {
          codes[r] = W::codes(rows[r], b);
          d[r] = W::scale(rows[r], b);
          if constexpr (kTwoScales<W>) d1[r] = W::scale1(rows[r], b);
          mm[r] = 0.0f;
        } else if constexpr (kSuperBlocks<W>) {
          // The scales come from the super-block table; W::load's own (unused) are optimized away.
          __m256i q = W::load(rows[r], b).q;
          if constexpr (kOffsetCodes<W>) q = _mm256_add_epi8(q, _mm256_set1_epi8(W::kCodeOffset));
          lo[r] = _mm256_permute2x128_si256(q, q, 0x00);
          hi[r] = _mm256_permute2x128_si256(q, q, 0x11);
          const int j = static_cast<int>(b % 8);
          if constexpr (kTwoScales<W>) {
            d[r] = sup_a[r][2 * j];
            d1[r] = sup_a[r][2 * j + 1];
            mm[r] = 0.0f;
          } else {
            d[r] = sup_a[r][j];
            mm[r] = sup_b[r][j];
          }
        } else {
          const WBlock wb = W::load(rows[r], b);
          lo[r] = _mm256_permute2x128_si256(wb.q, wb.q, 0x00);
          hi[r] = _mm256_permute2x128_si256(wb.q, wb.q, 0x11);
          d[r] = _mm256_cvtss_f32(wb.d);
          if constexpr (kTwoScales<W>) d1[r] = _mm_cvtss_f32(_mm256_extractf128_ps(wb.d, 1));
          mm[r] = wb.m;
        }
      }
      // The block's fma for the integer sums so far, scale d (per row) times the activations' scales.
      auto flush = [&](const float (&dw)[R], int half) {
        for (int c = 0; c < NC; ++c) {
          const BlockQ8x8& xb = xs[c][b];
          const __m256 dx = _mm256_load_ps(xb.d);
          [[maybe_unused]] __m256i xoff;  // offset-code types: offset * (sum of this half of x)
          if constexpr (kOffsetCodes<W>) {
            xoff = _mm256_mullo_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qsum[half])),
                                      _mm256_set1_epi32(W::kCodeOffset));
          }
          for (int r = 0; r < R; ++r) {
            if constexpr (kOffsetCodes<W>) isum[c][r] = _mm256_sub_epi32(isum[c][r], xoff);
            acc[c][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c][r]), _mm256_mul_ps(_mm256_set1_ps(dw[r]), dx), acc[c][r]);
          }
        }
      };
      // Signed codes go in as the s8 operand with the activation's sign (|x| <= 127 is the u8 one),
      // which cannot represent -(-128): a block with a code of -128 (no quantizer writes one, but a file
      // may hold it) takes |w| as the u8 operand instead, one more operation per product.
      auto step = [&]<int G, bool kAbsW>() {
        // The first group of a block (and of Q6_K's second half) starts the sums.
        constexpr bool kFirst = G == 0 || (kTwoScales<W> && G == 4);
        __m256i xv[NC];
        [[maybe_unused]] __m256i ax[NC];
        for (int c = 0; c < NC; ++c) {
          xv[c] = _mm256_load_si256(reinterpret_cast<const __m256i*>(xs[c][b].qs[G]));
          if constexpr (!kUnsignedCols && !kAbsW) ax[c] = _mm256_sign_epi8(xv[c], xv[c]);
        }
        for (int r = 0; r < R; ++r) {
          __m256i wv;
          if constexpr (DirectCodes<W>) {
            int32_t g4;
            std::memcpy(&g4, codes[r] + 4 * G, 4);
            wv = _mm256_set1_epi32(g4);
          } else {
            wv = group<G>(lo[r], hi[r]);
          }
          [[maybe_unused]] __m256i aw;
          if constexpr (kAbsW) aw = _mm256_sign_epi8(wv, wv);
          for (int c = 0; c < NC; ++c) {
            if constexpr (kSum16<W, Ops>) {
              constexpr int kN = kSum16Groups<W, Ops>;
              const __m256i p = Ops::pairs_u8s8(wv, xv[c]);
              isum16[c][r] = G % kN == 0 ? p : _mm256_add_epi16(isum16[c][r], p);
              if constexpr ((G + 1) % kN == 0) {
                const __m256i w32 = Ops::widen16(isum16[c][r]);
                isum[c][r] = G + 1 == kN || (kTwoScales<W> && G + 1 == 4 + kN) ? w32 : _mm256_add_epi32(isum[c][r], w32);
              }
            } else {
              __m256i p;
              if constexpr (kUnsignedCols) {
                p = Ops::dot_u8s8(wv, xv[c]);
              } else if constexpr (kAbsW) {
                p = Ops::dot_u8s8(aw, _mm256_sign_epi8(xv[c], wv));
              } else {
                p = Ops::dot_u8s8(ax[c], _mm256_sign_epi8(wv, xv[c]));
              }
              isum[c][r] = kFirst ? p : _mm256_add_epi32(isum[c][r], p);
            }
          }
        }
        if constexpr (kTwoScales<W> && G == 3) flush(d, 0);  // elements 0..15 done: their scale
      };
      bool abs_w = false;
      if constexpr (kMaybeMin128<W>) {
        __m256i any = _mm256_setzero_si256();
        for (int r = 0; r < R; ++r) {
          const __m256i q = DirectCodes<W> ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes[r]))
                                           : _mm256_permute2x128_si256(lo[r], hi[r], 0x20);
          any = _mm256_or_si256(any, _mm256_cmpeq_epi8(q, _mm256_set1_epi8(-128)));
        }
        abs_w = !_mm256_testz_si256(any, any);
      }
      if (abs_w) {
        [&]<int... G>(std::integer_sequence<int, G...>) { (step.template operator()<G, true>(), ...); }(
            std::make_integer_sequence<int, 8>{});
      } else {
        [&]<int... G>(std::integer_sequence<int, G...>) { (step.template operator()<G, false>(), ...); }(
            std::make_integer_sequence<int, 8>{});
      }
      if constexpr (kTwoScales<W>) {
        flush(d1, 1);
      } else {
        flush(d, 1);
      }
      if constexpr (W::kHasMin) {
        for (int c = 0; c < NC; ++c) {
          const __m256 sx = _mm256_load_ps(xs[c][b].s);
          for (int r = 0; r < R; ++r) acc[c][r] = _mm256_fmadd_ps(_mm256_set1_ps(mm[r]), sx, acc[c][r]);
        }
      }
    }
    for (int c = 0; c < NC; ++c) {
      const int64_t n_cols = std::min<int64_t>(8, a.m - (cg + c) * 8);
      for (int r = 0; r < R; ++r) {
        alignas(32) float out[8];
        _mm256_store_ps(out, acc[c][r]);
        for (int64_t i = 0; i < n_cols; ++i) {
          const float v = out[i];
          a.y[((cg + c) * 8 + i) * a.n_out + r0 + r] = a.bias != nullptr ? v + a.bias[r0 + r] : v;
        }
      }
    }
  }

  static void run(const MatmulArgs& a, int64_t r0, int64_t r1) {
    if (a.xq8 == nullptr) {
      run_by_rows(a, r0, r1, 0);
      return;
    }
    const int64_t nb = a.k / kQK8_0;
    // Up to 3 rows past the last full group of 8 cost less by rows than as a mostly empty group.
    const int64_t rem = a.m % 8;
    const int64_t n_groups = a.m / 8 + (rem >= 4 ? 1 : 0);
    if (rem > 0 && rem < 4) run_by_rows(a, r0, r1, a.m - rem);
    if (n_groups == 1) {  // a single group: only the activation loads are shared, by more weight rows
      column_passes<kColR1>(r0, r1, 1, nb * static_cast<int64_t>(sizeof(BlockQ8x8)),
                            [&]<int R>(int64_t r, int64_t) { by_cols<R, 1>(a, r, 0); });
      return;
    }
    // Units of kColNC column groups (the last one may be short).
    const int64_t n_units = (n_groups + kColNC - 1) / kColNC;
    column_passes<kColR>(r0, r1, n_units, kColNC * nb * static_cast<int64_t>(sizeof(BlockQ8x8)),
                         [&]<int R>(int64_t r, int64_t u) {
                           const int64_t g = u * kColNC;
                           const int64_t n = std::min<int64_t>(kColNC, n_groups - g);
                           if (n == kColNC) {
                             by_cols<R, kColNC>(a, r, g);
                           } else if (n == 2) {
                             by_cols<R, 2>(a, r, g);
                           } else {
                             by_cols<R, 1>(a, r, g);
                           }
                         });
  }
};

}  // namespace
}  // namespace llmopt::kernels
