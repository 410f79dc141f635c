// Q4_K, Q5_K and Q6_K weights regrouped by 16 rows (DType::kQ4_KR16 / kQ5_KR16 / kQ6_KR16,
// kernels/repack.h) against Q8 activation blocks, AVX-512 + VNNI, at any batch size; the helpers
// shared with the 32-element types are in r16_x86.h. Each super-block's scales decode for the 16 rows
// at once (one row per 32-bit lane) and each vpdpbusd adds to the 16 rows' sums; every sub-block then
// takes the same float operations as the file-layout kernels of its type (blockdot_rows_x86.h), so
// the results are bit-identical to them. Included by avx512.cc and amx.cc (whose tiles take batches).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/x86/r16_x86.h"

namespace llmopt::kernels {
namespace {

constexpr int64_t kR16Q4KSuperBytes = kR16Rows * 144;  // one super-block of a 16-row Q4_K group
constexpr int64_t kR16Q5KSuperBytes = kR16Rows * 176;  // and of a Q5_K group

// The 5th bits of Q5_K sub-block j for 4 elements of the 16 rows (qh: the 64 bytes of qh[4q .. 4q + 3]),
// at bit 4 of each byte, to be or-ed into the nibbles (ref: bit j of qh[l] for element l).
inline __m512i q5_high_bits(__m512i qh, int j) {
  return _mm512_and_si512(_mm512_slli_epi16(_mm512_srl_epi16(qh, _mm_cvtsi32_si128(j)), 4), _mm512_set1_epi8(0x10));
}

// The 16 rows' sub-block scales d * sc_j and offsets -(dmin * m_j) of one Q4_K super-block, row n in
// lane n (h: the super-block's header in the group, repack.h): k4_super_scales's bit and float
// operations, on 16 rows at once.
inline void q4k_r16_scales(const uint8_t* h, __m512 (&ds)[8], __m512 (&dm)[8]) {
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
  const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + 32)));
  const __m512i w0 = _mm512_loadu_si512(h + 64), w1 = _mm512_loadu_si512(h + 128), w2 = _mm512_loadu_si512(h + 192);
  const __m512i m3f = _mm512_set1_epi32(0x3f3f3f3f), m0f = _mm512_set1_epi32(0x0f0f0f0f);
  const __m512i m03 = _mm512_set1_epi32(0x03030303), byte = _mm512_set1_epi32(0xff);
  const __m512i sc_lo = _mm512_and_si512(w0, m3f), m_lo = _mm512_and_si512(w1, m3f);
  const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(w2, m0f),
                                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), m03), 4));
  const __m512i m_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), m0f),
                                       _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), m03), 4));
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  auto negate = [&](__m512 v) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sign)); };
  auto pick = [&](__m512i v, int j) {
    return _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srlv_epi32(v, _mm512_set1_epi32(8 * j)), byte));
  };
  for (int j = 0; j < 4; ++j) {
    ds[j] = _mm512_mul_ps(d, pick(sc_lo, j));
    ds[j + 4] = _mm512_mul_ps(d, pick(sc_hi, j));
    dm[j] = negate(_mm512_mul_ps(dmin, pick(m_lo, j)));
    dm[j + 4] = negate(_mm512_mul_ps(dmin, pick(m_hi, j)));
  }
}

// Q4_K (kQ5: Q5_K): activation rows [i0, i0 + R) against weight group g. Sub-blocks 2 jp and 2 jp + 1
// of a super-block are the low and high nibbles of the same 8 x 64 bytes (Q5_K: plus bit j of the qh
// byte of the element as bit 4); each sub-block then takes the operations of every Q4_K / Q5_K kernel
// (blockdot_rows_x86.h):
//     acc = fma(float(D_j), (d sc_j) * d_x, acc);  acc = fma(-(dmin m_j), s_x, acc)
template <int R, bool kQ5 = false>
inline void q4kr16_group(const MatmulArgs& a, int64_t g, int64_t i0) {
  constexpr int64_t kSuper = kQ5 ? kR16Q5KSuperBytes : kR16Q4KSuperBytes;
  constexpr int64_t kNibbles = kQ5 ? 768 : 256;  // offset of the nibbles in a super-block (Q5_K: qh at 256)
  const int64_t nsb = a.k / 256;
  const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kSuper;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * (a.k / 32);
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sp = base + sb * kSuper;
    prefetch_block(sp, kSuper);
    __m512 ds[8], dm[8];
    q4k_r16_scales(sp, ds, dm);
    for (int jp = 0; jp < 4; ++jp) {
      const uint8_t* c = sp + kNibbles + 512 * jp;
      // per row: sub-block 2 jp (low nibbles) and 2 jp + 1 (high), each over even and odd 64-byte steps
      __m512i s[R][4];
      for (int r = 0; r < R; ++r) s[r][0] = s[r][1] = s[r][2] = s[r][3] = _mm512_setzero_si512();
      for (int q = 0; q < 8; ++q) {
        const __m512i w = _mm512_loadu_si512(c + 64 * q);
        __m512i lo = _mm512_and_si512(w, low4), hi = _mm512_and_si512(_mm512_srli_epi16(w, 4), low4);
        if constexpr (kQ5) {
          const __m512i qh = _mm512_loadu_si512(sp + 256 + 64 * q);
          lo = _mm512_or_si512(lo, q5_high_bits(qh, 2 * jp));
          hi = _mm512_or_si512(hi, q5_high_bits(qh, 2 * jp + 1));
        }
        for (int r = 0; r < R; ++r) {
          int32_t g0, g1;
          std::memcpy(&g0, x[r][sb * 8 + 2 * jp].qs + 4 * q, 4);
          std::memcpy(&g1, x[r][sb * 8 + 2 * jp + 1].qs + 4 * q, 4);
          s[r][q % 2] = _mm512_dpbusd_epi32(s[r][q % 2], lo, _mm512_set1_epi32(g0));
          s[r][2 + q % 2] = _mm512_dpbusd_epi32(s[r][2 + q % 2], hi, _mm512_set1_epi32(g1));
        }
      }
      for (int r = 0; r < R; ++r) {
        for (int h = 0; h < 2; ++h) {
          const int j = 2 * jp + h;
          const BlockQ8Act& xb = x[r][sb * 8 + j];
          const __m512 v = _mm512_cvtepi32_ps(_mm512_add_epi32(s[r][2 * h], s[r][2 * h + 1]));
          acc[r] = _mm512_fmadd_ps(v, _mm512_mul_ps(ds[j], _mm512_set1_ps(xb.d)), acc[r]);
          acc[r] = _mm512_fmadd_ps(dm[j], _mm512_set1_ps(xb.s), acc[r]);
        }
      }
    }
  }
  store_group_rows<R>(a, g, i0, acc);
}

constexpr int64_t kR16Q6KSuperBytes = kR16Rows * 210;  // one super-block of a 16-row Q6_K group

// Elements 4q .. 4q + 3 of blocks 4h .. 4h + 3 of a Q6_K super-block of 16 rows (sp: its place in the
// group, repack.h) as unsigned codes q + 32 (0..63): u[c] for block 4h + c. ql (64 h + 4 q) holds blocks
// 4h and 4h + 2 in its low and high nibbles, ql (64 h + 32 + 4 q) blocks 4h + 1 and 4h + 3, and bits
// 2c, 2c + 1 of qh (32 h + 4 q) are block 4h + c's high bits.
inline void q6k_r16_codes(const uint8_t* sp, int h, int q, __m512i (&u)[4]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  const __m512i lo = _mm512_loadu_si512(sp + 256 + 64 * (16 * h + q));
  const __m512i hi = _mm512_loadu_si512(sp + 256 + 64 * (16 * h + 8 + q));
  const __m512i qh = _mm512_loadu_si512(sp + 2304 + 64 * (8 * h + q));
  u[0] = _mm512_or_si512(_mm512_and_si512(lo, low4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), bits45));
  u[1] = _mm512_or_si512(_mm512_and_si512(hi, low4), _mm512_and_si512(_mm512_slli_epi16(qh, 2), bits45));
  u[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lo, 4), low4), _mm512_and_si512(qh, bits45));
  u[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(hi, 4), low4),
                         _mm512_and_si512(_mm512_srli_epi16(qh, 2), bits45));
}

// Scale k (0..15) of a Q6_K super-block of 16 rows times their d: byte k % 4 of the rows' dwords k / 4,
// sign-extended (the same float product as every Q6_K kernel).
inline __m512 q6k_r16_scale(const uint8_t* sp, __m512 d, int k) {
  const __m512i w = _mm512_loadu_si512(sp + 64 * (k / 4));
  const __m512i sc = _mm512_srai_epi32(_mm512_sllv_epi32(w, _mm512_set1_epi32(24 - 8 * (k % 4))), 24);
  return _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
}

// Q6_K: activation rows [i0, i0 + R) against weight group g (repack.h: per super-block the scales,
// ql, qh and d of the 16 rows). 64 bytes at ql (64 h + 4 q) and ql (64 h + 32 + 4 q) and 64 at qh (32 h +
// 4 q) give elements 4q .. 4q + 3 of blocks 4h .. 4h + 3 of the 16 rows as unsigned codes q + 32; the
// int32 sums of each half block lose 32 * (the half's activation sum) (xoff, per activation row:
// [block][half]), which makes them the exact sums of the signed codes. Each half then takes the
// operations of every Q6_K kernel (blockdot_rows_x86.h), in block order:
//     acc = fma(float(D_{b,0}), (d sc_{2b}) * d_x, acc);  acc = fma(float(D_{b,1}), (d sc_{2b+1}) * d_x, acc)
template <int R>
inline void q6kr16_group(const MatmulArgs& a, int64_t g, int64_t i0, const int32_t* xoff) {
  const int64_t nsb = a.k / 256, nb = a.k / 32;
  const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kR16Q6KSuperBytes;
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  const BlockQ8Act* x[R];
  for (int r = 0; r < R; ++r) x[r] = a.xq + (i0 + r) * nb;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    const uint8_t* sp = base + sb * kR16Q6KSuperBytes;
    prefetch_block(sp, kR16Q6KSuperBytes);
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + 3328)));
    for (int h = 0; h < 2; ++h) {
      __m512i s[R][4][2];  // [row][block 4h + c][half]
      for (int r = 0; r < R; ++r) {
        for (int c = 0; c < 4; ++c) s[r][c][0] = s[r][c][1] = _mm512_setzero_si512();
      }
      for (int q = 0; q < 8; ++q) {
        __m512i u[4];
        q6k_r16_codes(sp, h, q, u);
        for (int r = 0; r < R; ++r) {
          for (int c = 0; c < 4; ++c) {
            int32_t x4;
            std::memcpy(&x4, x[r][sb * 8 + 4 * h + c].qs + 4 * q, 4);
            s[r][c][q / 4] = _mm512_dpbusd_epi32(s[r][c][q / 4], u[c], _mm512_set1_epi32(x4));
          }
        }
      }
      for (int c = 0; c < 4; ++c) {
        for (int t = 0; t < 2; ++t) {
          // scale k = 8 h + 2 c + t of the 16 rows: byte k % 4 of their dwords k / 4, sign-extended
          const __m512 scale = q6k_r16_scale(sp, d, 8 * h + 2 * c + t);
          for (int r = 0; r < R; ++r) {
            const int64_t b = sb * 8 + 4 * h + c;
            const __m512i v = _mm512_sub_epi32(s[r][c][t], _mm512_set1_epi32(xoff[((i0 + r) * nb + b) * 2 + t]));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(scale, _mm512_set1_ps(x[r][b].d)), acc[r]);
          }
        }
      }
    }
  }
  store_group_rows<R>(a, g, i0, acc);
}

// Weight rows [r0, r1) against all activation rows, 2 at a time (the sums of 2 rows fill the registers).
void q6kr16_rows_vnni(const MatmulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.k / 32;
  thread_local std::vector<int32_t> xoff;
  xoff.resize(static_cast<size_t>(a.m * nb * 2));
  for (int64_t i = 0; i < a.m * nb; ++i) {
    for (int t = 0; t < 2; ++t) {
      int32_t sum = 0;
      for (int e = 0; e < 16; ++e) sum += a.xq[i].qs[16 * t + e];
      xoff[static_cast<size_t>(2 * i + t)] = 32 * sum;
    }
  }
  const int64_t end = r16_groups_end(a, r1);
  for (int64_t g = r0 / kR16Rows; g * kR16Rows < end; ++g) {
    int64_t i = 0;
    for (; i + 2 <= a.m; i += 2) q6kr16_group<2>(a, g, i, xoff.data());
    if (i < a.m) q6kr16_group<1>(a, g, i, xoff.data());
  }
  r16_tail_rows<WQ6_K>(a, r0, r1);
}

template <bool kQ5>
void q4kr16_rows_vnni(const MatmulArgs& a, int64_t r0, int64_t r1) {
  r16_rows_by4<std::conditional_t<kQ5, WQ5_K, WQ4_K>>(
      a, r0, r1, [&]<int R>(int64_t g, int64_t i) { q4kr16_group<R, kQ5>(a, g, i); });
}

}  // namespace
}  // namespace llmopt::kernels
