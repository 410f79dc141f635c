// Q8_0, Q4_0 and Q4_1 weights regrouped by 16 rows (DType::kQ8_0R16 / kQ4_0R16 / kQ4_1R16, kernels/repack.h)
// on AVX2 (included by avx2.cc). The layout is r16_x86.h's: per block of a 16-row group, 32 bytes of
// f16 scales (and Q4_1's mins) and the codes, 4 consecutive codes of each of the 16 rows per 64
// bytes, so the first 32 bytes hold rows 0..7 and the next 32 rows 8..15. A broadcast group of 4
// activation codes against them gives each row's 4 products in its own lane: vpmaddubsw (pairs, to
// int16) and vpmaddwd by ones (to int32) leave each row's sum of the 4 in its int32 lane, so there are
// no horizontal sums: the int32 lanes accumulate the block's dot products of 8 rows at once.
//   Q8_0: vpmaddubsw multiplies unsigned by signed bytes, so it takes |w| (exact for -128: 128 as an
//   unsigned byte) and the activation codes with w's sign (|x| <= 127, quantize_act_row); a pair sum
//   is at most 2 * 128 * 127 = 32512, so each is widened to int32 at once.
//   Q4_0 / Q4_1: the codes (0..15) are unsigned already; a pair sum is at most 2 * 15 * 128 = 3840 and
//   the 8 of a block (4 groups, low and high nibbles) at most 30720, so they add in int16 and widen
//   once per block.
// Each output element then takes the same float operations as every other kernel of its type
// (tiles_blockdot_x86.h, r16_x86.h): per block in order acc = fma(float(D_b), d_w * d_x, acc), and for
// Q4_0 / Q4_1 acc = fma(m_w, s_x, acc) after it; the results are bit-identical to them, for any
// batch. Decode and batches up to kR16PassMaxM rows go 16, 8, 4, ... activation rows at a time over
// each group (r16_rows_passes_avx2); larger batches restore the groups to the file layout
// (r16_rows_avx2; both in r16avx2_batch_x86.h).
// Internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/r16_common_x86.h"
#include "kernels/x86/r16avx2_batch_x86.h"

namespace llmopt::kernels {
namespace {

// y[i0 + r][16 g .. 16 g + 15] = acc[r][0..1] (+ bias): rows 0..7 of the group, then 8..15.
template <int R>
inline void store_group_rows256(const MatmulArgs& a, int64_t g, int64_t i0, const __m256 (&acc)[R][2]) {
  for (int r = 0; r < R; ++r) {
    for (int h = 0; h < 2; ++h) {
      const int64_t o = g * kR16Rows + 8 * h;
      __m256 v = acc[r][h];
      if (a.bias != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(a.bias + o));
      _mm256_storeu_ps(a.y + (i0 + r) * a.n_out + o, v);
    }
  }
}

inline __m256i broadcast_codes4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Q8_0: activation rows [i0, i0 + R) against weight group g.
template <int R>
inline void q8r16_group_avx2(const MatmulArgs& a, int64_t g, int64_t i0) {
  const int64_t nb = a.k / 32;
  const uint8_t* base = a.w + static_cast<size_t>(g * nb) * kR16GroupBlockBytes;
  const uint8_t* scales = base;
  const uint8_t* codes = base + nb * 32;
  const uint8_t* pf = base;  // walks the group's bytes at the speed they are read
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_block(pf, kR16GroupBlockBytes);
    pf += kR16GroupBlockBytes;
    // |w| once per block (in L1), then one activation row at a time over the block's codes, the
    // row loop kept rolled: unrolled, the compiler hoisted every row's broadcasts and spilled
    // (measured: Q8_0 2304 x 768, m = 64, one core, 28 against 47 GMAC/s; the file layout's tiles 47).
    const uint8_t* c = codes + b * 512;
    alignas(32) __m256i u[8][2];  // |w| of the block's 8 groups of 4 codes, rows 0..7 and 8..15
    for (int q = 0; q < 8; ++q) {
      for (int h = 0; h < 2; ++h) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * q + 32 * h));
        u[q][h] = _mm256_sign_epi8(w, w);
      }
    }
    __m256i s[R][2];  // rows 0..7, 8..15: int32 sums of the block
#pragma GCC unroll 1
    for (int r = 0; r < R; ++r) {
      __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
      for (int q = 0; q < 8; ++q) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * q));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * q + 32));
        const __m256i xg = broadcast_codes4(x[r][b].qs + 4 * q);
        const __m256i p0 = _mm256_maddubs_epi16(u[q][0], _mm256_sign_epi8(xg, w0));
        const __m256i p1 = _mm256_maddubs_epi16(u[q][1], _mm256_sign_epi8(xg, w1));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
      }
      s[r][0] = s0;
      s[r][1] = s1;
    }
    const uint8_t* sb = scales + 32 * b;
    const __m256 dw[2] = {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb))),
                          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sb + 16)))};
    for (int r = 0; r < R; ++r) {
      const __m256 dx = _mm256_set1_ps(x[r][b].d);
      for (int h = 0; h < 2; ++h) {
        acc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][h]), _mm256_mul_ps(dw[h], dx), acc[r][h]);
      }
    }
  }
  store_group_rows256<R>(a, g, i0, acc);
}

// Q4_0 (kQ41 false: the offset is -8 d) or Q4_1 (kQ41: the block's own m, the group's mins):
// activation rows [i0, i0 + R) against weight group g.
template <int R, bool kQ41>
inline void q4r16_group_avx2(const MatmulArgs& a, int64_t g, int64_t i0) {
  const int64_t nb = a.k / 32;
  constexpr int64_t kGroupBlockBytes = kQ41 ? kR16Q41GroupBlockBytes : kR16Q4GroupBlockBytes;
  const auto [scales, mins, nib] = r16_q4_group<kQ41>(a, g);
  const uint8_t* pf = scales;  // walks the group's bytes at the speed they are read
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_block(pf, kGroupBlockBytes);
    pf += kGroupBlockBytes;
    // The block's 256 nibble bytes spread once to 4 x 4 vectors of codes in L1 (low nibbles, codes
    // 4p .. 4p + 3 of the block, and high nibbles, 16 + 4p .. 16 + 4p + 3; rows 0..7 and 8..15), then
    // one activation row at a time, the row loop kept rolled (unrolled, the compiler hoisted every
    // row's broadcasts and spilled).
    const uint8_t* c = nib + b * 256;
    alignas(32) __m256i u[4][4];
    for (int p = 0; p < 4; ++p) {
      for (int h = 0; h < 2; ++h) {
        const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * p + 32 * h));
        u[p][h] = _mm256_and_si256(w, low4);
        u[p][2 + h] = _mm256_and_si256(_mm256_srli_epi16(w, 4), low4);
      }
    }
    __m256i s[R][2];  // rows 0..7, 8..15: int16 pair sums of the block (at most 30720)
#pragma GCC unroll 1
    for (int r = 0; r < R; ++r) {
      __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
      for (int p = 0; p < 4; ++p) {
        const __m256i g0 = broadcast_codes4(x[r][b].qs + 4 * p), g1 = broadcast_codes4(x[r][b].qs + 16 + 4 * p);
        s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(u[p][0], g0), _mm256_maddubs_epi16(u[p][2], g1)));
        s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(u[p][1], g0), _mm256_maddubs_epi16(u[p][3], g1)));
      }
      s[r][0] = s0;
      s[r][1] = s1;
    }
    __m256 dw[2], mw[2];
    for (int h = 0; h < 2; ++h) {
      dw[h] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales + 32 * b + 16 * h)));
      // the offset: Q4_1's m, or Q4_0's m = -8 d (exact)
      mw[h] = kQ41 ? _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mins + 32 * b + 16 * h)))
                   : _mm256_mul_ps(dw[h], _mm256_set1_ps(-8.0f));
    }
    for (int r = 0; r < R; ++r) {
      const __m256 dx = _mm256_set1_ps(x[r][b].d), sx = _mm256_set1_ps(x[r][b].s);
      for (int h = 0; h < 2; ++h) {
        const __m256 v = _mm256_cvtepi32_ps(_mm256_madd_epi16(s[r][h], ones));
        acc[r][h] = _mm256_fmadd_ps(v, _mm256_mul_ps(dw[h], dx), acc[r][h]);
        acc[r][h] = _mm256_fmadd_ps(mw[h], sx, acc[r][h]);
      }
    }
  }
  store_group_rows256<R>(a, g, i0, acc);
}

// Ops: the ISA's integer dot product (the file layout's kernels of batches and of the rows past the
// last group).
template <class Ops>
void q8r16_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_avx2<WQ8_0, Ops>(
      a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q8r16_group_avx2<R>(a, g, i); }, restore_r16_groups<8, false>);
}
template <bool kQ41, class Ops>
void q4r16_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_avx2<std::conditional_t<kQ41, WQ4_1, WQ4_0>, Ops>(
      a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q4r16_group_avx2<R, kQ41>(a, g, i); },
      restore_r16_groups<4, kQ41>);
}

}  // namespace
}  // namespace llmopt::kernels
