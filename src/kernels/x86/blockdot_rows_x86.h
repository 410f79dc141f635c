// The decode side of the block-dot kernels (tiles_blockdot_x86.h): output elements by weight rows,
// for one activation row at a time (decode, batches of up to 4 rows, the rows past the last full
// column group). Each block's 8 int32 lanes are reduced for 4 weight rows at once; the K-quants decode
// a super-block's scales once for its 8 blocks. Included only through matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/blockdot_traits_x86.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

template <class W, class Ops>
struct BlockDotRows {
  // Output element (i, r) of weight rows [r0, r0 + R) against activation row i.
  template <int R>
  static void by_rows(const MatmulArgs& a, int64_t r0, int64_t i) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a.w_row(r0 + r);
    const BlockQ8Act* x = a.xq + i * nb;
    __m128 acc4 = _mm_setzero_ps();
    float acc1 = 0.0f;
    for (int64_t b = 0; b < nb; ++b) {
      for (int r = 0; r < R; ++r) {
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b * W::kBlockBytes + kPrefetchBytes), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(rows[r] + b * W::kBlockBytes + kPrefetchNear), _MM_HINT_T0);
      }
      const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      __m256i v[R];
      float d[R], mm[R];
      [[maybe_unused]] float d1[R];
      for (int r = 0; r < R; ++r) {
        const WBlock wb = W::load(rows[r], b);
        const __m256i u = W::kUnsigned ? wb.q : _mm256_sign_epi8(wb.q, wb.q);
        const __m256i s = W::kUnsigned ? xq : _mm256_sign_epi8(xq, wb.q);
        v[r] = Ops::dot_u8s8(u, s);
        d[r] = _mm256_cvtss_f32(wb.d);
        if constexpr (kTwoScales<W>) d1[r] = _mm_cvtss_f32(_mm256_extractf128_ps(wb.d, 1));
        mm[r] = wb.m;
      }
      const float dx = x[b].d;
      if constexpr (R == 4) {
        // The 128-bit halves hold rows 0..3's sums of lanes 0..3 (elements 0..15) and of lanes 4..7.
        const __m256i h = sum4_lanes(v[0], v[1], v[2], v[3]);
        const __m128i h0 = _mm256_castsi256_si128(h), h1 = _mm256_extracti128_si256(h, 1);
        __m128 d4;
        if constexpr (kHalfScales<W>) {
          d4 = gather4_half(rows, b, W::kBlockBytes, W::kHalfScale);
        } else {
          d4 = _mm_setr_ps(d[0], d[1], d[2], d[3]);
        }
        const __m128 scale = _mm_mul_ps(d4, _mm_set1_ps(dx));
        if constexpr (kTwoScales<W>) {
          acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(h0), scale, acc4);
          acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(h1), _mm_mul_ps(_mm_setr_ps(d1[0], d1[1], d1[2], d1[3]), _mm_set1_ps(dx)), acc4);
        } else {
          acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_add_epi32(h0, h1)), scale, acc4);
        }
        if constexpr (W::kHasMin) {
          __m128 m4;
          if constexpr (kHalfMins<W>) {
            m4 = gather4_half(rows, b, W::kBlockBytes, W::kHalfMin);
          } else if constexpr (kMinFromD<W>) {
            m4 = _mm_mul_ps(d4, _mm_set1_ps(W::kMinPerD));  // exact, as W::load's
          } else {
            m4 = _mm_setr_ps(mm[0], mm[1], mm[2], mm[3]);
          }
          acc4 = _mm_fmadd_ps(m4, _mm_set1_ps(x[b].s), acc4);
        }
      } else {
        static_assert(R == 1, "by_rows takes 4 rows or 1");
        if constexpr (kTwoScales<W>) {
          acc1 = std::fma(static_cast<float>(hsum_i32x4(_mm256_castsi256_si128(v[0]))), d[0] * dx, acc1);
          acc1 = std::fma(static_cast<float>(hsum_i32x4(_mm256_extracti128_si256(v[0], 1))), d1[0] * dx, acc1);
        } else {
          acc1 = std::fma(static_cast<float>(hsum_i32(v[0])), d[0] * dx, acc1);
        }
        if constexpr (W::kHasMin) acc1 = std::fma(mm[0], x[b].s, acc1);
      }
    }
    float out[4] = {acc1, 0.0f, 0.0f, 0.0f};
    if constexpr (R == 4) _mm_storeu_ps(out, acc4);
    for (int r = 0; r < R; ++r) {
      a.y[i * a.n_out + r0 + r] = a.bias != nullptr ? out[r] + a.bias[r0 + r] : out[r];
    }
  }

  // Every cache line of super-block sb of 4 rows, far ahead into L2 and near ahead into L1.
  static void prefetch_super4(const uint8_t* const* rows, int64_t sb) {
    for (int r = 0; r < 4; ++r) {
      for (int64_t off = 0; off < W::kSuperBytes; off += 64) {
        const char* p = reinterpret_cast<const char*>(rows[r] + sb * W::kSuperBytes + off);
        _mm_prefetch(p + kPrefetchBytes, _MM_HINT_T1);
        _mm_prefetch(p + kPrefetchNear, _MM_HINT_T0);
      }
    }
  }

  // y[i][r0 .. r0 + 4) = acc4 (+ bias).
  static void store4(const MatmulArgs& a, int64_t r0, int64_t i, __m128 acc4) {
    float out[4];
    _mm_storeu_ps(out, acc4);
    for (int r = 0; r < 4; ++r) a.y[i * a.n_out + r0 + r] = a.bias != nullptr ? out[r] + a.bias[r0 + r] : out[r];
  }

  // by_rows<4> for the K-quants: the scales of a super-block are decoded once for its 8 blocks and
  // transposed so that block j's 4 rows are one vector; the same operations per element as by_rows.
  static void by_rows_super4(const MatmulArgs& a, int64_t r0, int64_t i) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = a.w_row(r0 + r);
    const BlockQ8Act* x = a.xq + i * nb;
    __m128 acc4 = _mm_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; ++sb) {
      prefetch_super4(rows, sb);
      __m128 ds4[8], dm4[8];  // [j]: block j's value for rows 0..3
      W::super_scales4(rows, sb, ds4, dm4);
      for (int jp = 0; jp < 4; ++jp) {
        __m256i q[2][4];
        for (int r = 0; r < 4; ++r) W::super_codes(rows[r], sb, jp, &q[0][r], &q[1][r]);
        for (int h = 0; h < 2; ++h) {
          const int j = 2 * jp + h;
          const BlockQ8Act& xb = x[sb * 8 + j];
          const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qs));
          const __m256i s4 = sum4_lanes(Ops::dot_u8s8(q[h][0], xq), Ops::dot_u8s8(q[h][1], xq),
                                        Ops::dot_u8s8(q[h][2], xq), Ops::dot_u8s8(q[h][3], xq));
          const __m128i dsum = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
          acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(dsum), _mm_mul_ps(ds4[j], _mm_set1_ps(xb.d)), acc4);
          acc4 = _mm_fmadd_ps(dm4[j], _mm_set1_ps(xb.s), acc4);
        }
      }
    }
    store4(a, r0, i, acc4);
  }

  // by_rows_super4 for Q6_K: 16 scales per super-block, two per block. The codes go in unsigned (q + 32,
  // no sign operations) and 32 * sum(x) of each half block comes off the int32 sums afterwards (xoff:
  // per block, [32 * sum of elements 0..15] x 4 | [32 * sum of 16..31] x 4, as sum4_lanes lays out its
  // halves): the same integer sums as signed codes give, so the same results.
  static void by_rows_super4_two(const MatmulArgs& a, int64_t r0, int64_t i, const __m256i* xoff) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = a.w_row(r0 + r);
    const BlockQ8Act* x = a.xq + i * nb;
    __m128 acc4 = _mm_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; ++sb) {
      prefetch_super4(rows, sb);
      __m256 lo[4], hi[4];
      for (int r = 0; r < 4; ++r) W::super_scales(rows[r], sb, &lo[r], &hi[r]);
      __m128 sc4[16];  // [k]: scale k of rows 0..3
      transpose4x8(lo, sc4);
      transpose4x8(hi, sc4 + 8);
      auto block = [&]<int J>() {
        const BlockQ8Act& xb = x[sb * 8 + J];
        const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qs));
        __m256i v[4];
        for (int r = 0; r < 4; ++r) v[r] = Ops::dot_u8s8(W::template codes_u<J>(rows[r], sb), xq);
        const __m256i s4 = _mm256_sub_epi32(sum4_lanes(v[0], v[1], v[2], v[3]), xoff[sb * 8 + J]);
        const __m128 dx = _mm_set1_ps(xb.d);
        acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(s4)), _mm_mul_ps(sc4[2 * J], dx), acc4);
        acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_extracti128_si256(s4, 1)), _mm_mul_ps(sc4[2 * J + 1], dx), acc4);
      };
      [&]<int... J>(std::integer_sequence<int, J...>) {
        (block.template operator()<J>(), ...);
      }(std::make_integer_sequence<int, 8>{});
    }
    store4(a, r0, i, acc4);
  }

  // xoff of by_rows_super4_two for activation row i, blocks [0, nb).
  static void half_block_offsets(const MatmulArgs& a, int64_t i, __m256i* xoff) {
    const int64_t nb = a.k / kQK8_0;
    const BlockQ8Act* x = a.xq + i * nb;
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      // Sums of 4 elements per lane, then of 16 per 128-bit half, repeated over the half's 4 lanes.
      __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), xq), _mm256_set1_epi16(1));
      s = _mm256_hadd_epi32(s, s);
      s = _mm256_hadd_epi32(s, s);
      xoff[b] = _mm256_slli_epi32(s, 5);
    }
  }

  // Activation rows [i0, m) by weight rows. Where the ISA's Ops name a wider kernel for this type
  // (Ops::WideRows, rows512_x86.h), it takes the rows it can and the loops below the rest.
  static void run_by_rows(const MatmulArgs& a, int64_t r0, int64_t r1, int64_t i0) {
    int64_t r = r0;
    if constexpr (kWideRows<W, Ops>) r = Ops::WideRows::template run<W>(a, r0, r1, i0);
    // (A vector of a wrapper: std::vector<__m256i> would drop the type's alignment attribute.)
    struct alignas(32) Int32x8 {
      int32_t v[8];
    };
    [[maybe_unused]] thread_local std::vector<Int32x8> xoff_buf;
    if constexpr (kSuperBlocks<W> && kTwoScales<W>) {
      const int64_t nb = a.k / kQK8_0;
      xoff_buf.resize(static_cast<size_t>((a.m - i0) * nb));
      __m256i* xoff = reinterpret_cast<__m256i*>(xoff_buf.data());
      for (int64_t i = i0; i < a.m; ++i) half_block_offsets(a, i, xoff + (i - i0) * nb);
    }
    for (; r + 4 <= r1; r += 4) {
      for (int64_t i = i0; i < a.m; ++i) {
        if constexpr (kSuperBlocks<W> && kTwoScales<W>) {
          by_rows_super4_two(a, r, i, reinterpret_cast<const __m256i*>(xoff_buf.data()) + (i - i0) * (a.k / kQK8_0));
        } else if constexpr (kSuperBlocks<W>) {
          by_rows_super4(a, r, i);
        } else {
          by_rows<4>(a, r, i);
        }
      }
    }
    for (; r < r1; ++r) {
      for (int64_t i = i0; i < a.m; ++i) by_rows<1>(a, r, i);
    }
  }
};

}  // namespace
}  // namespace llmopt::kernels
