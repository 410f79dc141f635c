// The regrouped K-quants on the AMX tiles (included only by amx.cc): Q4_K, Q5_K and Q6_K rows regrouped
// by 16 (kernels/repack.h) on amx_r16_x86.h's unit and driver; batches below kAmxMinRowsKQuant take the
// VNNI kernels of r16k_x86.h, whose results they equal bit for bit.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/x86/amx_r16_x86.h"
#include "kernels/x86/amx_tiles_x86.h"
#include "kernels/x86/r16k_x86.h"

namespace llmopt::kernels {
namespace {

// DType::kQ4_KR16 (kQ5: kQ5_KR16): per group and pass, each sub-block's scales d sc_j and offsets
// -(dmin m_j) of the 16 rows (f32, [sub-block][16]) and its codes spread to bytes (Q5_K: with their
// fifth bits), then the unit with f32 scales: the operations of every Q4_K / Q5_K kernel, a sub-block
// being one 32-code block.
template <bool kQ5>
void amx_q4kr16_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.m < kAmxMinRowsKQuant) {
    q4kr16_rows_vnni<kQ5>(a, r0, r1);
    return;
  }
  constexpr int64_t kSuper = kQ5 ? kR16Q5KSuperBytes : kR16Q4KSuperBytes;
  constexpr int64_t kNibbles = kQ5 ? 768 : 256;
  const int64_t nb = a.k / kQK8_0, nsb = a.k / 256;
  thread_local std::vector<uint8_t> wbuf, sbuf, mbuf;
  int8_t* wq = aligned64<int8_t>(wbuf, static_cast<size_t>(nb * 512));
  float* ds = aligned64<float>(sbuf, static_cast<size_t>(nb * kAmxRows));
  float* dm = aligned64<float>(mbuf, static_cast<size_t>(nb * kAmxRows));
  auto prepare = [&](int64_t g, bool first_pass) {
    const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kSuper;
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* sp = base + sb * kSuper;
      if (first_pass) prefetch_next_group(sp, kSuper);
      __m512 s[8], m[8];
      q4k_r16_scales(sp, s, m);
      for (int j = 0; j < 8; ++j) {
        _mm512_store_ps(ds + (8 * sb + j) * kAmxRows, s[j]);
        _mm512_store_ps(dm + (8 * sb + j) * kAmxRows, m[j]);
      }
      // sub-blocks 2 jp (low nibbles) and 2 jp + 1 (high) share 8 x 64 bytes
      for (int jp = 0; jp < 4; ++jp) {
        int8_t* out = wq + (8 * sb + 2 * jp) * 512;
        spread_nibbles(sp + kNibbles + 512 * jp, out, out + 512, 8);
        if constexpr (kQ5) {  // bit j of qh[l] as bit 4 of sub-block j's code l
          for (int q = 0; q < 8; ++q) {
            const __m512i qh = _mm512_loadu_si512(sp + 256 + 64 * q);
            for (int h = 0; h < 2; ++h) {
              __m512i* p = reinterpret_cast<__m512i*>(out + 512 * h + 64 * q);
              _mm512_store_si512(p, _mm512_or_si512(_mm512_load_si512(p), q5_high_bits(qh, 2 * jp + h)));
            }
          }
        }
      }
    }
  };
  amx_r16_rows<std::conditional_t<kQ5, WQ5_K, WQ4_K>>(
      a, r0, r1, prepare,
      [&](int64_t, const ActTileQ8* xs, const float* dx, const float* sx, __m512(&acc)[kAmxRows], bool,
          int rows) {
        amx_r16_unit<true, true>(xs, dx, sx, reinterpret_cast<const uint8_t*>(ds),
                                 reinterpret_cast<const uint8_t*>(dm), reinterpret_cast<const uint8_t*>(wq), nb,
                                 acc, false, rows);
      });
}

// DType::kQ6_KR16: per group and pass, the 16 rows' scales d sc_k of each half block (f32,
// [half block][16]) and their codes q - 32 as signed bytes, 16 per half block; then the unit on tiles of
// 16 codes: each half block's exact sum and the operations of every Q6_K kernel, in order
// (acc = fma(float(D_{b,h}), (d sc_{2b+h}) * d_x, acc)).
void amx_q6kr16_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.m < kAmxMinRowsKQuant) {
    q6kr16_rows_vnni(a, r0, r1);
    return;
  }
  const int64_t nb = a.k / kQK8_0, nsb = a.k / 256;
  thread_local std::vector<uint8_t> wbuf, sbuf;
  int8_t* wq = aligned64<int8_t>(wbuf, static_cast<size_t>(nb * 512));
  float* ds = aligned64<float>(sbuf, static_cast<size_t>(2 * nb * kAmxRows));
  const __m512i c32 = _mm512_set1_epi8(32);
  auto prepare = [&](int64_t g, bool first_pass) {
    const uint8_t* base = a.w + static_cast<size_t>(g * nsb) * kR16Q6KSuperBytes;
    for (int64_t sb = 0; sb < nsb; ++sb) {
      const uint8_t* sp = base + sb * kR16Q6KSuperBytes;
      if (first_pass) prefetch_next_group(sp, kR16Q6KSuperBytes);
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + 3328)));
      for (int k = 0; k < 16; ++k) _mm512_store_ps(ds + (16 * sb + k) * kAmxRows, q6k_r16_scale(sp, d, k));
      for (int h = 0; h < 2; ++h) {
        for (int q = 0; q < 8; ++q) {  // elements 4q .. 4q + 3 of blocks 4h .. 4h + 3
          __m512i u[4];
          q6k_r16_codes(sp, h, q, u);
          for (int c = 0; c < 4; ++c) {
            const int64_t hb = 2 * (8 * sb + 4 * h + c) + q / 4;  // half block
            _mm512_store_si512(wq + hb * 256 + 64 * (q % 4), _mm512_sub_epi8(u[c], c32));
          }
        }
      }
    }
  };
  amx_r16_rows<WQ6_K, 16>(
      a, r0, r1, prepare,
      [&](int64_t, const ActTileQ8* xs, const float* dx, const float* sx, __m512(&acc)[kAmxRows], bool,
          int rows) {
        amx_r16_unit<false, true, true>(xs, dx, sx, reinterpret_cast<const uint8_t*>(ds), nullptr,
                                        reinterpret_cast<const uint8_t*>(wq), 2 * nb, acc, false, rows);
      });
}

}  // namespace
}  // namespace llmopt::kernels
