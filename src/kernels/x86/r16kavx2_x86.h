// Q4_K and Q6_K weights regrouped by 16 rows (DType::kQ4_KR16 / kQ6_KR16, and Q6_K's three-plane
// kQ6_KR16X3, which loading picks here; kernels/repack.h) on AVX2
// (included by avx2.cc). r16k_x86.h reads the same layout with 512-bit vectors and VNNI; here each
// 64-byte field chunk (4 bytes of each of the 16 rows) is two 256-bit halves, rows 0..7 and 8..15, and
// the products are r16avx2_x86.h's: a broadcast group of 4 activation codes against 32 bytes of
// unsigned codes (vpmaddubsw, then vpmaddwd by ones) leaves each row's sum of the 4 in its own int32
// lane. Every sub-block then takes the same float operations as the file-layout kernels of its type
// (blockdot_rows_x86.h), in the same order, so the results are bit-identical to them for any batch
// (tests/kernels/r16_k_test.cc). Decode and batches up to kR16PassMaxM rows run the kernels below,
// up to 16 activation rows per pass over a group; larger batches restore the groups (Q4_K to the file
// layout, Q6_K to one byte per code: r16q6kx_avx2_x86.h) and run the tiles (r16_rows_avx2,
// r16avx2_batch_x86.h). Internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/x86/r16avx2_x86.h"
#include "kernels/x86/r16q6kx_avx2_x86.h"

namespace llmopt::kernels {
namespace {

constexpr int64_t kR16Q4KSuperBytesAvx2 = kR16Rows * 144;  // one super-block of a 16-row Q4_K group

// ---- Q4_K ----------------------------------------------------------------------------------------

// Sub-block scales d * sc_j and offsets -(dmin * m_j) of rows 8 h .. 8 h + 7 of the super-block at sp
// (row n in lane n - 8 h): k4_super_scales's bit and float operations on 8 rows at once.
inline void q4k_r16_scales_avx2(const uint8_t* sp, int h, __m256 (&ds)[8], __m256 (&dm)[8]) {
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 16 * h)));
  const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 32 + 16 * h)));
  auto word = [&](int t) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + 64 + 64 * t + 32 * h)); };
  const __m256i w0 = word(0), w1 = word(1), w2 = word(2);
  const __m256i m3f = _mm256_set1_epi32(0x3f3f3f3f), m0f = _mm256_set1_epi32(0x0f0f0f0f);
  const __m256i m03 = _mm256_set1_epi32(0x03030303);
  const __m256i sc_lo = _mm256_and_si256(w0, m3f), m_lo = _mm256_and_si256(w1, m3f);
  const __m256i sc_hi = _mm256_or_si256(_mm256_and_si256(w2, m0f),
                                        _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 6), m03), 4));
  const __m256i m_hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), m0f),
                                       _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 6), m03), 4));
  // -(dmin * m) is (-dmin) * m exactly (rounding is symmetric in the sign).
  const __m256 neg_dmin = _mm256_xor_ps(dmin, _mm256_set1_ps(-0.0f));
  // Byte j of every dword, zero-extended: one byte shuffle (indices within each 128-bit lane).
  auto pick = [&](__m256i v, int j) {
    const __m256i idx = _mm256_add_epi32(
        _mm256_setr_epi32(int(0x80808000), int(0x80808004), int(0x80808008), int(0x8080800C), int(0x80808000),
                          int(0x80808004), int(0x80808008), int(0x8080800C)),
        _mm256_set1_epi32(j));
    return _mm256_cvtepi32_ps(_mm256_shuffle_epi8(v, idx));
  };
  for (int j = 0; j < 4; ++j) {
    ds[j] = _mm256_mul_ps(d, pick(sc_lo, j));
    ds[j + 4] = _mm256_mul_ps(d, pick(sc_hi, j));
    dm[j] = _mm256_mul_ps(neg_dmin, pick(m_lo, j));
    dm[j + 4] = _mm256_mul_ps(neg_dmin, pick(m_hi, j));
  }
}

// Q4_K: activation rows [i0, i0 + R) against weight group g. Sub-blocks 2 jp and 2 jp + 1 are the low
// and high nibbles of the same 8 x 64 bytes; each takes the operations of every Q4_K kernel:
//     acc = fma(float(D_j), (d sc_j) * d_x, acc);  acc = fma(-(dmin m_j), s_x, acc)
// A sub-block's 8 int16 pair sums per row fit (at most 8 * 2 * 15 * 127 = 30480), so they widen once.
template <int R>
inline void q4kr16_group_avx2(const MatmulArgs& a, int64_t g, int64_t i0) {
  const int64_t nsb = a.k / 256;
  const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kR16Q4KSuperBytesAvx2;
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * (a.k / 32);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sp = base + sb * kR16Q4KSuperBytesAvx2;
    prefetch_block(sp, kR16Q4KSuperBytesAvx2);
    __m256 ds[2][8], dm[2][8];
    q4k_r16_scales_avx2(sp, 0, ds[0], dm[0]);
    q4k_r16_scales_avx2(sp, 1, ds[1], dm[1]);
    for (int jp = 0; jp < 4; ++jp) {
      const uint8_t* c = sp + 256 + 512 * jp;
      alignas(32) __m256i u[8][4];  // per 4 codes: rows 0..7 / 8..15 of sub-block 2 jp, then of 2 jp + 1
      #pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) {
        #pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
          const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * q + 32 * h));
          u[q][h] = _mm256_and_si256(w, low4);
          u[q][2 + h] = _mm256_and_si256(_mm256_srli_epi16(w, 4), low4);
        }
      }
      // one activation row at a time, the loop kept rolled (r16avx2_x86.h: unrolled, the broadcasts
      // of every row were hoisted and spilled)
#pragma GCC unroll 1
      for (int r = 0; r < R; ++r) {
        const BlockQ8Act& x0 = x[r][sb * 8 + 2 * jp];
        const BlockQ8Act& x1 = x[r][sb * 8 + 2 * jp + 1];
        __m256i s[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
        #pragma GCC unroll 8
        for (int q = 0; q < 8; ++q) {
          const __m256i g0 = broadcast_codes4(x0.qs + 4 * q), g1 = broadcast_codes4(x1.qs + 4 * q);
          s[0] = _mm256_add_epi16(s[0], _mm256_maddubs_epi16(u[q][0], g0));
          s[1] = _mm256_add_epi16(s[1], _mm256_maddubs_epi16(u[q][1], g0));
          s[2] = _mm256_add_epi16(s[2], _mm256_maddubs_epi16(u[q][2], g1));
          s[3] = _mm256_add_epi16(s[3], _mm256_maddubs_epi16(u[q][3], g1));
        }
        #pragma GCC unroll 2
        for (int t = 0; t < 2; ++t) {  // sub-block 2 jp + t
          const int j = 2 * jp + t;
          const BlockQ8Act& xb = t == 0 ? x0 : x1;
          const __m256 dx = _mm256_set1_ps(xb.d), sx = _mm256_set1_ps(xb.s);
          #pragma GCC unroll 2
          for (int h = 0; h < 2; ++h) {
            const __m256 v = _mm256_cvtepi32_ps(_mm256_madd_epi16(s[2 * t + h], ones));
            acc[r][h] = _mm256_fmadd_ps(v, _mm256_mul_ps(ds[h][j], dx), acc[r][h]);
            acc[r][h] = _mm256_fmadd_ps(dm[h][j], sx, acc[r][h]);
          }
        }
      }
    }
  }
  store_group_rows256<R>(a, g, i0, acc);
}

// ---- Q6_K ----------------------------------------------------------------------------------------

// Q6_K: activation rows [i0, i0 + R) against weight group g. Per super-block (repack.h: the 16 scales,
// ql, qh and d of the 16 rows) and half h (blocks 4 h .. 4 h + 3), the codes of elements 4q .. 4q + 3
// of block 4 h + c come from ql (64 h + 4 q) (c = 0, 2: low / high nibbles), ql (64 h + 32 + 4 q)
// (c = 1, 3) and bits 2c, 2c + 1 of qh (32 h + 4 q), as unsigned codes q + 32 (0..63). Their int32
// sums over each half block (16 elements, one scale) lose 32 * (the half's activation sum) (xoff, per
// activation row: [block][half]): the exact sums of the signed codes. Each half then takes the
// operations of every Q6_K kernel, in block order:
//     acc = fma(float(D_{b,0}), (d sc_{2b}) * d_x, acc);  acc = fma(float(D_{b,1}), (d sc_{2b+1}) * d_x, acc)
// A pair sum is at most 2 * 63 * 127 = 16002, so two add in int16 before widening.
template <int R, bool kX3>
inline void q6kr16_group_avx2(const MatmulArgs& a, int64_t g, int64_t i0, const int32_t* xoff) {
  const int64_t nsb = a.k / 256, nb = a.k / 32;
  const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kR16Q6KSuperBytesAvx2;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sp = base + sb * kR16Q6KSuperBytesAvx2;
    prefetch_block(sp, kR16Q6KSuperBytesAvx2);
    const __m256 d[2] = {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 3328))),
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sp + 3344)))};
    for (int h = 0; h < 2; ++h) {
      alignas(32) __m256i u[8][4][2];  // [q][block 4 h + c][rows 0..7 / 8..15]
      #pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) {
        #pragma GCC unroll 2
        for (int v = 0; v < 2; ++v) {
          __m256i w[4];
          q6k_r16_codes_avx2<kX3>(sp, h, q, v, w);
          for (int c = 0; c < 4; ++c) u[q][c][v] = w[c];
        }
      }
      // scale k = 8 h + 2 c + t of the 16 rows times their d: byte k % 4 of their dwords k / 4 (kX3: bytes
      // 16 k .. 16 k + 15), sign-extended
      alignas(32) __m256 sc[4][2][2];  // [c][t][rows 0..7 / 8..15]
      #pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        #pragma GCC unroll 2
        for (int t = 0; t < 2; ++t) {
          const int k = 8 * h + 2 * c + t;
          #pragma GCC unroll 2
          for (int v = 0; v < 2; ++v) {
            __m256i s8;
            if constexpr (kX3) {  // k-major: the 8 rows' bytes side by side
              s8 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sp + 16 * k + 8 * v)));
            } else {
              const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + 64 * (k / 4) + 32 * v));
              s8 = _mm256_srai_epi32(_mm256_sll_epi32(w, _mm_cvtsi32_si128(24 - 8 * (k % 4))), 24);
            }
            sc[c][t][v] = _mm256_mul_ps(d[v], _mm256_cvtepi32_ps(s8));
          }
        }
      }
#pragma GCC unroll 1
      for (int r = 0; r < R; ++r) {
        __m256 acc0 = acc[r][0], acc1 = acc[r][1];
        #pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          const int64_t b = sb * 8 + 4 * h + c;
          const BlockQ8Act& xb = x[r][b];
          const __m256 dx = _mm256_set1_ps(xb.d);
          #pragma GCC unroll 2
          for (int t = 0; t < 2; ++t) {
            const __m256i g0 = broadcast_codes4(xb.qs + 16 * t), g1 = broadcast_codes4(xb.qs + 16 * t + 4);
            const __m256i g2 = broadcast_codes4(xb.qs + 16 * t + 8), g3 = broadcast_codes4(xb.qs + 16 * t + 12);
            const __m256i off = _mm256_set1_epi32(xoff[((i0 + r) * nb + b) * 2 + t]);
            __m256i s[2];
            #pragma GCC unroll 2
            for (int v = 0; v < 2; ++v) {
              const int q = 4 * t;
              const __m256i p01 = _mm256_add_epi16(_mm256_maddubs_epi16(u[q][c][v], g0), _mm256_maddubs_epi16(u[q + 1][c][v], g1));
              const __m256i p23 = _mm256_add_epi16(_mm256_maddubs_epi16(u[q + 2][c][v], g2), _mm256_maddubs_epi16(u[q + 3][c][v], g3));
              s[v] = _mm256_sub_epi32(_mm256_add_epi32(_mm256_madd_epi16(p01, ones), _mm256_madd_epi16(p23, ones)), off);
            }
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[0]), _mm256_mul_ps(sc[c][t][0], dx), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[1]), _mm256_mul_ps(sc[c][t][1], dx), acc1);
          }
        }
        acc[r][0] = acc0;
        acc[r][1] = acc1;
      }
    }
  }
  store_group_rows256<R>(a, g, i0, acc);
}

// 32 times the sum of each half (16 codes) of every activation block: [row][block][half]. (The plain
// loop compiled to several hundred packing instructions per block.)
inline void q6k_half_block_offsets(const MatmulArgs& a, std::vector<int32_t>& xoff) {
  const int64_t nb = a.k / 32;
  xoff.resize(static_cast<size_t>(a.m * nb * 2));
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t i = 0; i < a.m * nb; ++i) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.xq[i].qs));
    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, xq), ones16);  // sums of 4
    s = _mm256_hadd_epi32(s, s);
    s = _mm256_hadd_epi32(s, s);  // lane 0: elements 0..15, lane 4: 16..31
    xoff[static_cast<size_t>(2 * i)] = 32 * _mm256_extract_epi32(s, 0);
    xoff[static_cast<size_t>(2 * i + 1)] = 32 * _mm256_extract_epi32(s, 4);
  }
}

template <class Ops>
void q4kr16_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_avx2<WQ4_K, Ops>(
      a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q4kr16_group_avx2<R>(a, g, i); },
      restore_k_groups<Q4KFields>);
}

// kQ6_KR16 or (kX3) kQ6_KR16X3.
template <class Ops, bool kX3>
void q6kr16_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1) {
  thread_local std::vector<int32_t> xoff;
  if (a.xq8 == nullptr || a.m <= kR16PassMaxM) q6k_half_block_offsets(a, xoff);
  // Large batches restore to WQ6_KX blocks (r16q6kx_avx2_x86.h), not to the file layout.
  r16_rows_avx2<WQ6_K, Ops, WQ6_KX>(
      a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q6kr16_group_avx2<R, kX3>(a, g, i, xoff.data()); },
      restore_q6k_expanded<kX3>, WQ6_KX::row_bytes(a.k));
}

}  // namespace
}  // namespace llmopt::kernels
