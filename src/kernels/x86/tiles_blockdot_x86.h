// Block-quantized weights (one scale per 32 elements) against Q8 activation blocks, with one exact
// integer dot product D_b per block. Every output element is the same sequence of operations:
//     acc = 0; for each block b in order: acc = fma(float(D_b), d_w * d_x, acc)
//                                         acc = fma(m_w, s_x, acc)          (types with an offset)
//     y = acc (+ bias)
// (Q6_K, two scales per block: D_b is two dot products of 16 elements, each with its own d_w.)
// computed by one of two kernels, chosen by the batch size only (the result never depends on it):
//  - by weight rows (decode, batches of up to 4 rows): each block's 8 int32 lanes are reduced for 4
//    weight rows at once;
//  - by activation columns (batches of 5 rows and more): 8 activation rows interleaved by groups of
//    4 bytes (BlockQ8x8), each group of 4 weight codes broadcast to all lanes, so the 8 lanes are 8
//    activation rows, no reduction is needed, and one broadcast and one vector of activations serve 8
//    and R products. About 4 vector operations per 32 multiply-adds, against 7-8 for the row layout.
//    Weight rows are prefetched ahead as in decode (measured: 8-sequence batched decode of GPT-2 124M
//    Q8_0 +30%, prefill unchanged).
// Types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, q4_1_g128, and the K-quants Q4_K, Q5_K, Q6_K, whose decode
// reads a super-block's scales once for its 8 blocks (by_rows_super4*).
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
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

// Weight types whose codes can be broadcast straight from memory (Q8_0: 32 signed bytes per block).
template <class W>
concept DirectCodes = requires(const uint8_t* row, int64_t b) {
  { W::codes(row, b) } -> std::same_as<const uint8_t*>;
  { W::scale(row, b) } -> std::same_as<float>;
};


// Q6_K: elements 0..15 and 16..31 of a block have scales of their own (WBlock::d lanes 0..3 and 4..7):
// a block is two integer dot products, each with its scale, in that order.
template <class W>
constexpr bool kTwoScales = requires { W::kTwoScales; };
// Signed codes that can be -128 (the u8 operand must then be |w|, see by_cols).
template <class W>
constexpr bool kMaybeMin128 = !W::kUnsigned && !requires { W::kNoMin128; } && !requires { W::kCodeOffset; };
// K-quants decoded a super-block (8 blocks) at a time: W::super_scales (and W::super_codes).
template <class W>
constexpr bool kSuperBlocks = requires { W::kSuperBytes; };
template <class W>
constexpr bool kHalfScales = requires { W::kHalfScale; };
template <class W>
constexpr bool kHalfMins = requires { W::kHalfMin; };
template <class W>
constexpr bool kMinFromD = requires { W::kMinPerD; };

// The f16 at byte offset off of block b of 4 rows, as 4 floats (one conversion for all four).
inline __m128 gather4_half(const uint8_t* const* rows, int64_t b, int64_t block_bytes, int64_t off) {
  uint16_t h[4];
  for (int r = 0; r < 4; ++r) std::memcpy(&h[r], rows[r] + b * block_bytes + off, 2);
  __m128i v = _mm_cvtsi32_si128(h[0] | (h[1] << 16));
  v = _mm_insert_epi32(v, h[2] | (h[3] << 16), 1);
  return _mm_cvtph_ps(v);
}

// Lanes 0..3 of the result: the sums of lanes 0..3 of a, b, c, d; lanes 4..7: of their lanes 4..7
// (unpacks and adds, one micro-op each, rather than horizontal adds).
inline int hsum_i32x4(__m128i v) {
  v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
  return _mm_cvtsi128_si32(v);
}

inline __m256i sum4_lanes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}

// Q6_K's codes are read unsigned (q + 32, 0..63) in the batched tiles, and 32 times the sum of each
// 16-element half of the activations (BlockQ8x8::qsum) taken off the exact integer dot products.
template <class W>
constexpr bool kOffsetCodes = requires { W::kCodeOffset; };
// Unsigned codes of at most c against |x| <= 127: a pair sum is at most 254 c in magnitude, so
// 32767 / (254 c) groups add up in int16 before widening to int32 (c = 15: all 8 groups of a block;
// 31: 4; 63: 2), where the ISA has no fused u8 x s8 -> int32 accumulate (Ops::kPairSums16).
template <class W, class Ops>
constexpr int kSum16Groups = [] {
  if constexpr (requires { Ops::kPairSums16; W::kMaxCode; }) {
    return W::kMaxCode <= 15 ? 8 : W::kMaxCode <= 31 ? 4 : W::kMaxCode <= 63 ? 2 : 0;
  }
  return 0;
}();
template <class W, class Ops>
constexpr bool kSum16 = kSum16Groups<W, Ops> > 0;

template <class W, class Ops>
struct BlockDotKernel {
  static constexpr int kColR = 4;  // weight rows per column tile
  // The batched tiles read the codes unsigned (Q6_K with its offset).
  static constexpr bool kUnsignedCols = W::kUnsigned || kOffsetCodes<W>;

  // Output element (i, r) of weight rows [r0, r0 + R) against activation row i.
  template <int R>
  static void by_rows(const MatmulArgs& a, int64_t r0, int64_t i) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a.w + static_cast<size_t>(r0 + r) * a.w_row_bytes;
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

  // by_rows<4> for the K-quants: the scales of a super-block are decoded once for its 8 blocks and
  // transposed so that block j's 4 rows are one vector; the same operations per element as by_rows.
  static void by_rows_super4(const MatmulArgs& a, int64_t r0, int64_t i) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = a.w + static_cast<size_t>(r0 + r) * a.w_row_bytes;
    const BlockQ8Act* x = a.xq + i * nb;
    __m128 acc4 = _mm_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; ++sb) {
      for (int r = 0; r < 4; ++r) {
        for (int64_t off = 0; off < W::kSuperBytes; off += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + sb * W::kSuperBytes + off + kPrefetchBytes), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + sb * W::kSuperBytes + off + kPrefetchNear), _MM_HINT_T0);
        }
      }
      __m256 ds[4], dm[4];
      for (int r = 0; r < 4; ++r) W::super_scales(rows[r], sb, &ds[r], &dm[r]);
      __m128 ds4[8], dm4[8];  // [j]: block j's value for rows 0..3
      transpose4x8(ds, ds4);
      transpose4x8(dm, dm4);
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
    float out[4];
    _mm_storeu_ps(out, acc4);
    for (int r = 0; r < 4; ++r) a.y[i * a.n_out + r0 + r] = a.bias != nullptr ? out[r] + a.bias[r0 + r] : out[r];
  }

  // by_rows_super4 for Q6_K: 16 scales per super-block, two per block.
  static void by_rows_super4_two(const MatmulArgs& a, int64_t r0, int64_t i) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = a.w + static_cast<size_t>(r0 + r) * a.w_row_bytes;
    const BlockQ8Act* x = a.xq + i * nb;
    __m128 acc4 = _mm_setzero_ps();
    for (int64_t sb = 0; sb < nb / 8; ++sb) {
      for (int r = 0; r < 4; ++r) {
        for (int64_t off = 0; off < W::kSuperBytes; off += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + sb * W::kSuperBytes + off + kPrefetchBytes), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(rows[r] + sb * W::kSuperBytes + off + kPrefetchNear), _MM_HINT_T0);
        }
      }
      __m256 lo[4], hi[4];
      for (int r = 0; r < 4; ++r) W::super_scales(rows[r], sb, &lo[r], &hi[r]);
      __m128 sc4[16];  // [k]: scale k of rows 0..3
      transpose4x8(lo, sc4);
      transpose4x8(hi, sc4 + 8);
      for (int j = 0; j < 8; ++j) {
        const BlockQ8Act& xb = x[sb * 8 + j];
        const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qs));
        __m256i v[4];
        for (int r = 0; r < 4; ++r) {
          const __m256i q = W::load(rows[r], sb * 8 + j).q;
          v[r] = Ops::dot_u8s8(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xq, q));
        }
        const __m256i s4 = sum4_lanes(v[0], v[1], v[2], v[3]);
        const __m128 dx = _mm_set1_ps(xb.d);
        acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_castsi256_si128(s4)), _mm_mul_ps(sc4[2 * j], dx), acc4);
        acc4 = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm256_extracti128_si256(s4, 1)), _mm_mul_ps(sc4[2 * j + 1], dx), acc4);
      }
    }
    float out[4];
    _mm_storeu_ps(out, acc4);
    for (int r = 0; r < 4; ++r) a.y[i * a.n_out + r0 + r] = a.bias != nullptr ? out[r] + a.bias[r0 + r] : out[r];
  }

  // v[r] (8 values of row r) -> t[j] (value j of rows 0..3).
  static void transpose4x8(const __m256* v, __m128* t) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                         _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
    for (int j = 0; j < 4; ++j) {
      t[j] = _mm256_castps256_ps128(u[j]);
      t[j + 4] = _mm256_extractf128_ps(u[j], 1);
    }
  }

  // Codes 4G..4G+3 of a block in every 32-bit lane, from its codes 0..15 (lo) and 16..31 (hi), each
  // repeated in both 128-bit halves.
  template <int G>
  static __m256i group(__m256i lo, __m256i hi) {
    return _mm256_shuffle_epi32(G < 4 ? lo : hi, (G % 4) * 0x55);
  }

  // Output elements of weight rows [r0, r0 + R) against the 8 activation rows of column group cg.
  template <int R>
  static void by_cols(const MatmulArgs& a, int64_t r0, int64_t cg) {
    const int64_t nb = a.k / kQK8_0;
    const uint8_t* rows[R];
    for (int r = 0; r < R; ++r) rows[r] = a.w + static_cast<size_t>(r0 + r) * a.w_row_bytes;
    const BlockQ8x8* x = a.xq8 + cg * nb;
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
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
      const BlockQ8x8& xb = x[b];
      __m256i isum[R];
      [[maybe_unused]] __m256i isum16[R];
      float d[R], mm[R];
      [[maybe_unused]] float d1[R];
      [[maybe_unused]] __m256i lo[R], hi[R];
      [[maybe_unused]] const uint8_t* codes[R];
      for (int r = 0; r < R; ++r) {
        isum[r] = _mm256_setzero_si256();
        if constexpr (kSum16<W, Ops>) isum16[r] = _mm256_setzero_si256();
        if constexpr (DirectCodes<W>) {
          codes[r] = W::codes(rows[r], b);
          d[r] = W::scale(rows[r], b);
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
      const __m256 dx = _mm256_load_ps(xb.d);
      [[maybe_unused]] __m256i xoff[2];  // offset-code types: offset * (sum of each half of x)
      if constexpr (kOffsetCodes<W>) {
        for (int h = 0; h < 2; ++h) {
          xoff[h] = _mm256_mullo_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qsum[h])),
                                       _mm256_set1_epi32(W::kCodeOffset));
        }
      }
      // Signed codes go in as the s8 operand with the activation's sign (|x| <= 127 is the u8 one),
      // which cannot represent -(-128): a block with a code of -128 (no quantizer writes one, but a file
      // may hold it) takes |w| as the u8 operand instead, one more operation per group.
      auto step = [&]<int G, bool kAbsW>() {
        const __m256i xv = _mm256_load_si256(reinterpret_cast<const __m256i*>(xb.qs[G]));
        [[maybe_unused]] __m256i ax;
        if constexpr (!kUnsignedCols && !kAbsW) ax = _mm256_sign_epi8(xv, xv);
        for (int r = 0; r < R; ++r) {
          __m256i wv;
          if constexpr (DirectCodes<W>) {
            int32_t g4;
            std::memcpy(&g4, codes[r] + 4 * G, 4);
            wv = _mm256_set1_epi32(g4);
          } else {
            wv = group<G>(lo[r], hi[r]);
          }
          if constexpr (kSum16<W, Ops>) {
            isum16[r] = _mm256_add_epi16(isum16[r], Ops::pairs_u8s8(wv, xv));
            if constexpr ((G + 1) % kSum16Groups<W, Ops> == 0) {
              isum[r] = _mm256_add_epi32(isum[r], Ops::widen16(isum16[r]));
              isum16[r] = _mm256_setzero_si256();
            }
          } else if constexpr (kUnsignedCols) {
            isum[r] = _mm256_add_epi32(isum[r], Ops::dot_u8s8(wv, xv));
          } else if constexpr (kAbsW) {
            isum[r] = _mm256_add_epi32(isum[r], Ops::dot_u8s8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv)));
          } else {
            isum[r] = _mm256_add_epi32(isum[r], Ops::dot_u8s8(ax, _mm256_sign_epi8(wv, xv)));
          }
        }
        if constexpr (kTwoScales<W> && G == 3) {  // elements 0..15 done: their scale, then 16..31
          for (int r = 0; r < R; ++r) {
            if constexpr (kOffsetCodes<W>) isum[r] = _mm256_sub_epi32(isum[r], xoff[0]);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_mul_ps(_mm256_set1_ps(d[r]), dx), acc[r]);
            isum[r] = _mm256_setzero_si256();
            d[r] = d1[r];
          }
        }
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
      for (int r = 0; r < R; ++r) {
        if constexpr (kOffsetCodes<W>) isum[r] = _mm256_sub_epi32(isum[r], xoff[1]);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_mul_ps(_mm256_set1_ps(d[r]), dx), acc[r]);
        if constexpr (W::kHasMin) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(mm[r]), _mm256_load_ps(xb.s), acc[r]);
      }
    }
    const int64_t n_cols = std::min<int64_t>(8, a.m - cg * 8);
    for (int r = 0; r < R; ++r) {
      alignas(32) float out[8];
      _mm256_store_ps(out, acc[r]);
      for (int64_t c = 0; c < n_cols; ++c) {
        const float v = out[c];
        a.y[(cg * 8 + c) * a.n_out + r0 + r] = a.bias != nullptr ? v + a.bias[r0 + r] : v;
      }
    }
  }

  // Activation rows [i0, m) by weight rows.
  static void run_by_rows(const MatmulArgs& a, int64_t r0, int64_t r1, int64_t i0) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
      for (int64_t i = i0; i < a.m; ++i) {
        if constexpr (kSuperBlocks<W> && kTwoScales<W>) {
          by_rows_super4_two(a, r, i);
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
    // Column groups per pass: about 128 KiB of activations, which stay in L2 while this thread's weight
    // rows pass by (each 4-row tile stays in L1 across the groups).
    const int64_t chunk = std::max<int64_t>(1, (int64_t{128} << 10) / (nb * static_cast<int64_t>(sizeof(BlockQ8x8))));
    for (int64_t g0 = 0; g0 < n_groups; g0 += chunk) {
      const int64_t g1 = std::min(n_groups, g0 + chunk);
      int64_t r = r0;
      for (; r + kColR <= r1; r += kColR) {
        for (int64_t g = g0; g < g1; ++g) by_cols<kColR>(a, r, g);
      }
      for (; r < r1; ++r) {
        for (int64_t g = g0; g < g1; ++g) by_cols<1>(a, r, g);
      }
    }
  }
};

}  // namespace
}  // namespace llmopt::kernels
