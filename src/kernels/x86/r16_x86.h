// Q8_0, Q4_0 and Q4_1 weights regrouped by 16 rows (DType::kQ8_0R16 / kQ4_0R16 / kQ4_1R16, kernels/repack.h),
// and what the 512-bit regrouped kernels share (row stores, the VNNI tail rows; the rest is in
// r16_common_x86.h, the K-quants in r16k_x86.h, the AVX2 kernels in r16avx2_x86.h), against
// Q8 activation blocks, AVX-512 + VNNI (included by avx512.cc and amx.cc; the tiles take batches in
// amx.cc).
//
// One block of 16 weight rows is 32 bytes of f16 scales and 8 x 64 bytes of codes, 4 consecutive
// codes of each of the 16 rows per 64 bytes: one vpdpbusd against a broadcast group of 4 activation
// codes adds to all 16 rows' sums at once (no horizontal sums). vpdpbusd multiplies unsigned by
// signed bytes, so it takes |w| and the activation codes with w's sign (exact for every int8 code,
// -128 included: |-128| = 128 as an unsigned byte). Each output element then takes the same float
// operations as every other Q8_0 kernel (tiles_blockdot_x86.h):
//     for each block b in order: acc = fma(float(D_b), d_w * d_x, acc);   y = acc (+ bias)
// so the results are bit-identical to them, for any batch. Q4_0: 64 bytes hold 4 codes (0..15) of
// each of the 16 rows in their low nibbles and 4 more in their high nibbles, both unsigned already:
// vpdpbusd takes them as they are against the activation codes, and as in every Q4_0 / Q4_1 kernel
// the offset m_w (Q4_0: -8 d_w) comes in as a second term: acc = fma(m_w, s_x, acc) (s_x = d_x * sum of
// the activation block's codes, BlockQ8Act::s).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/matmul_x86.h"
#include "kernels/x86/r16_common_x86.h"

namespace llmopt::kernels {
namespace {

// The file-layout kernel for the rows past the last group takes VNNI's integer dot product.
struct R16TailOps {
  static __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};
template <class W>
inline void r16_tail_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_tail_rows_with<W, R16TailOps>(a, r0, r1);
}
template <class W, class Group>
inline void r16_rows_by4(const MatmulArgs& a, int64_t r0, int64_t r1, const Group& group) {
  r16_rows_by4_with<W, R16TailOps>(a, r0, r1, group);
}

// y[i0 + r][16 g .. 16 g + 15] = acc[r] (+ bias).
template <int R>
inline void store_group_rows(const MatmulArgs& a, int64_t g, int64_t i0, const __m512 (&acc)[R]) {
  const __m512 bias = a.bias != nullptr ? _mm512_loadu_ps(a.bias + g * kR16Rows) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    const __m512 v = a.bias != nullptr ? _mm512_add_ps(acc[r], bias) : acc[r];
    _mm512_storeu_ps(a.y + (i0 + r) * a.n_out + g * kR16Rows, v);
  }
}

// Activation rows [i0, i0 + R) against weight group g: y[i][16 g .. 16 g + 15].
template <int R>
inline void q8r16_group(const MatmulArgs& a, int64_t g, int64_t i0) {
  const int64_t nb = a.k / 32;
  const uint8_t* base = a.w + static_cast<size_t>(g * nb) * kR16GroupBlockBytes;
  const uint8_t* scales = base;
  const uint8_t* codes = base + nb * 32;
  const uint8_t* pf = base;  // walks the group's bytes at the speed they are read
  const int64_t pf_step = kR16GroupBlockBytes;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_block(pf, pf_step);
    pf += pf_step;
    // Two partial sums per row (even and odd groups of 4 codes) halve the dependency chains;
    // integer sums, so their order does not matter.
    __m512i s0[R], s1[R];
    for (int r = 0; r < R; ++r) s0[r] = s1[r] = _mm512_setzero_si512();
    const uint8_t* c = codes + b * 512;
    for (int q = 0; q < 8; q += 2) {
      const __m512i w0 = _mm512_loadu_si512(c + 64 * q), w1 = _mm512_loadu_si512(c + 64 * q + 64);
      const __m512i u0 = _mm512_abs_epi8(w0), u1 = _mm512_abs_epi8(w1);
      const __mmask64 n0 = _mm512_movepi8_mask(w0), n1 = _mm512_movepi8_mask(w1);
      for (int r = 0; r < R; ++r) {
        int32_t g0, g1;
        std::memcpy(&g0, x[r][b].qs + 4 * q, 4);
        std::memcpy(&g1, x[r][b].qs + 4 * q + 4, 4);
        const __m512i x0 = _mm512_set1_epi32(g0), x1 = _mm512_set1_epi32(g1);
        s0[r] = _mm512_dpbusd_epi32(s0[r], u0, _mm512_mask_sub_epi8(x0, n0, _mm512_setzero_si512(), x0));
        s1[r] = _mm512_dpbusd_epi32(s1[r], u1, _mm512_mask_sub_epi8(x1, n1, _mm512_setzero_si512(), x1));
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    for (int r = 0; r < R; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(s0[r], s1[r]));
      acc[r] = _mm512_fmadd_ps(v, _mm512_mul_ps(dw, _mm512_set1_ps(x[r][b].d)), acc[r]);
    }
  }
  store_group_rows<R>(a, g, i0, acc);
}

// Q4_0 (kQ41 false: the offset is -8 d) or Q4_1 (kQ41: the block's own m, the group's mins):
// activation rows [i0, i0 + R) against weight group g.
template <int R, bool kQ41>
inline void q4r16_group(const MatmulArgs& a, int64_t g, int64_t i0) {
  const int64_t nb = a.k / 32;
  constexpr int64_t kGroupBlockBytes = kQ41 ? kR16Q41GroupBlockBytes : kR16Q4GroupBlockBytes;
  const auto [scales, mins, nib] = r16_q4_group<kQ41>(a, g);
  const uint8_t* pf = scales;  // walks the group's bytes at the speed they are read
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_block(pf, kGroupBlockBytes);
    pf += kGroupBlockBytes;
    __m512i s0[R], s1[R];  // low nibbles (codes 0..15 of the block), high nibbles (16..31)
    for (int r = 0; r < R; ++r) s0[r] = s1[r] = _mm512_setzero_si512();
    const uint8_t* c = nib + b * 256;
    for (int p = 0; p < 4; ++p) {
      const __m512i w = _mm512_loadu_si512(c + 64 * p);
      const __m512i lo = _mm512_and_si512(w, low4), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), low4);
      for (int r = 0; r < R; ++r) {
        int32_t g0, g1;
        std::memcpy(&g0, x[r][b].qs + 4 * p, 4);
        std::memcpy(&g1, x[r][b].qs + 16 + 4 * p, 4);
        s0[r] = _mm512_dpbusd_epi32(s0[r], lo, _mm512_set1_epi32(g0));
        s1[r] = _mm512_dpbusd_epi32(s1[r], hi, _mm512_set1_epi32(g1));
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    // the offset: Q4_1's m, or Q4_0's m = -8 d (exact)
    const __m512 mw = kQ41 ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins + 32 * b)))
                           : _mm512_mul_ps(dw, _mm512_set1_ps(-8.0f));
    for (int r = 0; r < R; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(s0[r], s1[r]));
      acc[r] = _mm512_fmadd_ps(v, _mm512_mul_ps(dw, _mm512_set1_ps(x[r][b].d)), acc[r]);
      acc[r] = _mm512_fmadd_ps(mw, _mm512_set1_ps(x[r][b].s), acc[r]);
    }
  }
  store_group_rows<R>(a, g, i0, acc);
}

template <bool kQ41>
void q4r16_rows_vnni(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_by4<std::conditional_t<kQ41, WQ4_1, WQ4_0>>(a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q4r16_group<R, kQ41>(a, g, i); });
}

void q8r16_rows_vnni(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_by4<WQ8_0>(a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q8r16_group<R>(a, g, i); });
}


}  // namespace
}  // namespace llmopt::kernels
