// Decode of Q4_0 / Q4_1 weights (one activation row at a time) with 512-bit vectors: three blocks of
// sixteen weight rows per step. Included only by the AVX-512 translation units (avx512.cc, amx.cc), whose
// Ops name it as their WideRows; blockdot_rows_x86.h's run_by_rows hands it the rows it takes.
//
// A 64-byte load of a row holds three whole blocks (18 or 20 bytes each). One word permute per row
// lines their 16 code bytes up as the three 128-bit lanes of a vector, so that a block's 32 codes (low
// and high nibbles) meet its 32 activation codes in one lane and two vpdpbusd give every lane the
// partial sums of its block. For each group of 4 rows, the sum4_lanes transposition leaves per lane
// the rows' exact block sums, and the rows' f16 scales (and Q4_1's offsets) come out of the same loads
// by merge-masked word permutes in that [block][row] order; a 4 x 4 transposition of 128-bit lanes
// then gives one vector of 16 rows per block. The float operations per block and row are those of
// by_rows<4> in the same order, on 16 rows at once:
//     acc = fma(float(D_b), d_w * d_x, acc);   acc = fma(m_w, s_x, acc)
// so every result equals the AVX2 / AVX-512 / AMX kernels' bit for bit.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/blockdot_traits_x86.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

struct WideRows {
  // Types taken: 4-bit codes with one f16 scale per 32-element block and three blocks per 64 bytes.
  template <class W>
  static constexpr bool kHandles = std::is_same_v<W, WQ4_0> || std::is_same_v<W, WQ4_1>;
  static constexpr int64_t kRows = 16;  // weight rows per step

  // The activation row's blocks regrouped by three: element j < 16 of block 3t + L in lane L of
  // lo[t], element 16 + j in lane L of hi[t]; lane 3 and the lanes past the last block zero.
  struct alignas(64) XWindow {
    __m512i lo, hi;
  };
  static void prepare(const BlockQ8Act* x, int64_t nb, XWindow* out) {
    for (int64_t t = 0; t * 3 < nb; ++t) {
      XWindow& o = out[t];
      o.lo = o.hi = _mm512_setzero_si512();
      for (int64_t l = 0; l < 3 && 3 * t + l < nb; ++l) {
        const BlockQ8Act& b = x[3 * t + l];
        const __mmask16 lane = static_cast<__mmask16>(0xF << (4 * l));
        o.lo = _mm512_mask_broadcast_i32x4(o.lo, lane, _mm_load_si128(reinterpret_cast<const __m128i*>(b.qs)));
        o.hi = _mm512_mask_broadcast_i32x4(o.hi, lane, _mm_load_si128(reinterpret_cast<const __m128i*>(b.qs + 16)));
      }
    }
  }

  // Byte offset of the codes in a block.
  template <class W>
  static constexpr int64_t codes_at() {
    if constexpr (std::is_same_v<W, WQ4_0>) {
      return offsetof(BlockQ4_0, qs);
    } else {
      return offsetof(BlockQ4_1, qs);
    }
  }
  // Word indices into a row's 64-byte window: the codes of blocks 0..2 as lanes 0..2; the f16 at byte
  // offset off of block L into word 4 L + r (row r of a group of 4; merged under mask_rows(r)).
  template <class W>
  static __m512i code_index() {
    alignas(64) int16_t idx[32] = {};
    for (int l = 0; l < 3; ++l) {
      for (int j = 0; j < 8; ++j) idx[8 * l + j] = static_cast<int16_t>((W::kBlockBytes * l + codes_at<W>()) / 2 + j);
    }
    return _mm512_load_si512(idx);
  }
  static __m512i half_index(int64_t block_bytes, int64_t off) {
    alignas(64) int16_t idx[32] = {};
    for (int l = 0; l < 3; ++l) {
      for (int r = 0; r < 4; ++r) idx[4 * l + r] = static_cast<int16_t>((block_bytes * l + off) / 2);
    }
    return _mm512_load_si512(idx);
  }
  static __mmask32 mask_rows(int r) { return (1u << r) | (1u << (4 + r)) | (1u << (8 + r)); }

  // g[0..3]: lane L of g[k] holds rows 4k..4k+3 of block L; t[L] gets lane L of all four (rows 0..15).
  static void transpose_lanes(const __m512i (&g)[4], __m512i (&t)[3]) {
    const __m512i u0 = _mm512_shuffle_i32x4(g[0], g[1], 0x44), u1 = _mm512_shuffle_i32x4(g[0], g[1], 0xEE);
    const __m512i u2 = _mm512_shuffle_i32x4(g[2], g[3], 0x44), u3 = _mm512_shuffle_i32x4(g[2], g[3], 0xEE);
    t[0] = _mm512_shuffle_i32x4(u0, u2, 0x88);
    t[1] = _mm512_shuffle_i32x4(u0, u2, 0xDD);
    t[2] = _mm512_shuffle_i32x4(u1, u3, 0x88);
  }

  // Output elements (i, r0 .. r0 + 16) from the regrouped activation row xw.
  template <class W>
  static void rows16(const MatmulArgs& a, int64_t r0, int64_t i, const XWindow* xw, const __m512i& cidx,
                     const __m512i& didx, [[maybe_unused]] const __m512i& midx) {
    const int64_t nb = a.k / kQK8_0;
    const BlockQ8Act* x = a.xq + i * nb;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0, t = 0; b < nb; b += 3, ++t) {
      const int n_blocks = static_cast<int>(std::min<int64_t>(3, nb - b));
      // Only the window's whole blocks are read (a masked load does not fault past them).
      const __mmask64 bytes = ~__mmask64{0} >> (64 - n_blocks * W::kBlockBytes);
      __m512i sums[4], dh[4];
      [[maybe_unused]] __m512i mh[4];
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        __m512i v[4];
        dh[g] = _mm512_setzero_si512();
        if constexpr (kHalfMins<W>) mh[g] = _mm512_setzero_si512();
        for (int r = 0; r < 4; ++r) {
          const uint8_t* p = a.w_row(r0 + 4 * g + r) + b * W::kBlockBytes;
          _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T1);
          const __m512i w = _mm512_maskz_loadu_epi8(bytes, p);
          const __m512i q = _mm512_maskz_permutexvar_epi16(0x00FFFFFF, cidx, w);
          const __m512i lo = _mm512_and_si512(q, nib);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), nib);
          v[r] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xw[t].lo), hi, xw[t].hi);
          dh[g] = _mm512_mask_permutexvar_epi16(dh[g], mask_rows(r), didx, w);
          if constexpr (kHalfMins<W>) mh[g] = _mm512_mask_permutexvar_epi16(mh[g], mask_rows(r), midx, w);
        }
        // Per 128-bit lane L: the group's four rows' exact sums of block b + L.
        const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
        const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
        sums[g] = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
        // The f16 scales (offsets) in the same [block][row] order, as f32 bits.
        dh[g] = _mm512_castps_si512(_mm512_cvtph_ps(_mm512_castsi512_si256(dh[g])));
        if constexpr (kHalfMins<W>) mh[g] = _mm512_castps_si512(_mm512_cvtph_ps(_mm512_castsi512_si256(mh[g])));
      }
      __m512i st[3], dt[3];
      [[maybe_unused]] __m512i mt[3];
      transpose_lanes(sums, st);
      transpose_lanes(dh, dt);
      if constexpr (kHalfMins<W>) transpose_lanes(mh, mt);
      auto step = [&]<int l>() {
        const __m512 dw = _mm512_castsi512_ps(dt[l]);
        __m512 mw;
        if constexpr (kHalfMins<W>) {
          mw = _mm512_castsi512_ps(mt[l]);
        } else {
          mw = _mm512_mul_ps(dw, _mm512_set1_ps(W::kMinPerD));  // exact, as W::load's
        }
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(st[l]), _mm512_mul_ps(dw, _mm512_set1_ps(x[b + l].d)), acc);
        acc = _mm512_fmadd_ps(mw, _mm512_set1_ps(x[b + l].s), acc);
      };
      step.template operator()<0>();
      if (n_blocks > 1) step.template operator()<1>();
      if (n_blocks > 2) step.template operator()<2>();
    }
    if (a.bias != nullptr) acc = _mm512_add_ps(acc, _mm512_loadu_ps(a.bias + r0));
    _mm512_storeu_ps(a.y + i * a.n_out + r0, acc);
  }

  // Weight rows [r0, r1) in groups of 16 against activation rows [i0, m); returns the first row not
  // done (the caller's 4-row and one-row kernels take the rest).
  template <class W>
  static int64_t run(const MatmulArgs& a, int64_t r0, int64_t r1, int64_t i0) {
    if (r1 - r0 < kRows) return r0;
    const int64_t nb = a.k / kQK8_0;
    const int64_t n_win = (nb + 2) / 3;
    thread_local std::vector<XWindow> xbuf;
    xbuf.resize(static_cast<size_t>((a.m - i0) * n_win));
    for (int64_t i = i0; i < a.m; ++i) prepare(a.xq + i * nb, nb, xbuf.data() + (i - i0) * n_win);
    const __m512i cidx = code_index<W>();
    const __m512i didx = half_index(W::kBlockBytes, W::kHalfScale);
    __m512i midx = _mm512_setzero_si512();
    if constexpr (kHalfMins<W>) midx = half_index(W::kBlockBytes, W::kHalfMin);
    int64_t r = r0;
    for (; r + kRows <= r1; r += kRows) {
      for (int64_t i = i0; i < a.m; ++i) rows16<W>(a, r, i, xbuf.data() + (i - i0) * n_win, cidx, didx, midx);
    }
    return r;
  }
};

}  // namespace
}  // namespace llmopt::kernels
