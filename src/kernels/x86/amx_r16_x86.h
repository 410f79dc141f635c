// The regrouped layouts on the AMX tiles (included only by amx.cc): Q8_0, Q4_0 and Q4_1 rows regrouped
// by 16 (kernels/repack.h) against batches of activation rows, and the unit and driver that the
// K-quants' tile kernels (amx_r16k_x86.h) share; smaller batches take the VNNI kernels of r16_x86.h /
// r16k_x86.h, whose results they equal bit for bit.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/x86/amx_tiles_x86.h"
#include "kernels/x86/r16k_x86.h"

namespace llmopt::kernels {
namespace {

// DType::kQ8_0R16 (repack.h): the weights' codes are already laid out as the second tile operand
// (one 16-row group's block: 8 rows of 64 contiguous bytes), so the 16 activation rows become the
// first operand (16 rows x 32 codes, packed once per product) and the 16 x 16 sums come out with
// one row per activation row: no transpose, no gathered scales (the group's 16 f16 scales of a block
// are 32 contiguous bytes), no strided tile loads. Per element the same float operations as the
// other Q8_0 kernels: acc = fma(float(D_b), d_w * d_x, acc) for each block b in order (+ bias).
struct alignas(64) ActTileQ8 {
  int8_t qs[kAmxRows][32];  // activation row i's codes of this block
};

// The activation rows [16 t, 16 t + 16) of a.xq as nb ActTileQ8 (codes), [nb][16] scales d and
// [nb][16] s = d * sum(codes) (the term of a weight offset, Q4_0); rows past the batch are zero.
void pack_act_tiles(const MatmulArgs& a, int64_t t, ActTileQ8* xs, float* dx, float* sx) {
  const int64_t nb = a.k / kQK8_0;
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t i = 0; i < kAmxRows; ++i) {
      const int64_t row = t * kAmxRows + i;
      if (row < a.m) {
        const BlockQ8Act& q = a.xq[row * nb + b];
        _mm256_store_si256(reinterpret_cast<__m256i*>(xs[b].qs[i]), _mm256_load_si256(reinterpret_cast<const __m256i*>(q.qs)));
        dx[b * kAmxRows + i] = q.d;
        sx[b * kAmxRows + i] = q.s;
      } else {
        _mm256_store_si256(reinterpret_cast<__m256i*>(xs[b].qs[i]), _mm256_setzero_si256());
        dx[b * kAmxRows + i] = 0.0f;
        sx[b * kAmxRows + i] = 0.0f;
      }
    }
  }
}

// One group of 16 weight rows (scales, codes: repack.h) against 16 activation rows, all blocks;
// out[i]: activation row i against the 16 weight rows. pf: prefetch the weight stream ahead (the
// first pass over a Q8_0 group). kMin (Q4_0, codes 0..15): after each block's fma also
// acc = fma(-8 d_w, s_x, acc), as every Q4_0 kernel does.
// kF32Scales (Q4_K, Q6_K): scales and mins are f32 [block][16] (the sub-blocks' d sc_j and -(dmin m_j)).
// kHalf (Q6_K; the tiles configured for 16 codes): nb counts half blocks of 16 codes, half h of block
// b / 2 of the activations, each with its own weight scale; codes holds 4 x 64 bytes per half block.
// rows: the activation rows the tiles are configured for (load_tile_config); out[rows..] are not computed.
template <bool kMin, bool kF32Scales = false, bool kHalf = false>
void amx_r16_unit(const ActTileQ8* xs, const float* dx, const float* sx, const uint8_t* scales, const uint8_t* mins,
                  const uint8_t* codes, int64_t nb, __m512 (&out)[kAmxRows], bool pf, int rows) {
  // The weights are one stream (group after group): block b's share of it, far ahead into L2 and
  // near ahead into L1, as the decode kernels do. NOTE: on this machine's 300 MiB L3 no distance
  // (none, 4-16 KiB far, 0.5-2 KiB near) measured apart from the others beyond the noise.
  auto prefetch = [&](int64_t b) {
    if (!pf) return;
    const uint8_t* p = scales + b * kR16GroupBlockBytes;
    for (int64_t off = 0; off < kR16GroupBlockBytes; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(p + off + kPrefetchBytes), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(p + off + 1024), _MM_HINT_T0);
    }
  };
  // block b's activation codes (kHalf: the half b % 2 of block b / 2, rows 32 bytes apart) and codes
  auto act = [&](int64_t b) { return kHalf ? &xs[b / 2].qs[0][16 * (b % 2)] : &xs[b].qs[0][0]; };
  constexpr int64_t kCodeBytes = kHalf ? 256 : 512;
  auto issue0 = [&](int64_t b) {
    _tile_loadd(0, act(b), 32);
    _tile_loadd(1, codes + kCodeBytes * b, 64);
    _tile_zero(2);
    _tile_dpbssd(2, 0, 1);
  };
  auto issue1 = [&](int64_t b) {
    _tile_loadd(3, act(b), 32);
    _tile_loadd(4, codes + kCodeBytes * b, 64);
    _tile_zero(5);
    _tile_dpbssd(5, 3, 4);
  };
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
  auto epilogue = [&](int64_t b, const int32_t* s) {
    __m512 dw, mw = _mm512_setzero_ps();
    if constexpr (kF32Scales) {
      dw = _mm512_load_ps(reinterpret_cast<const float*>(scales) + 16 * b);
      if constexpr (kMin) mw = _mm512_load_ps(reinterpret_cast<const float*>(mins) + 16 * b);
    } else {
      dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
      // the offset (kMin): the group's mins (Q4_1), or Q4_0's m = -8 d (exact)
      mw = mins != nullptr ? _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mins + 32 * b)))
                           : _mm512_mul_ps(dw, _mm512_set1_ps(-8.0f));
    }
    const float* d = dx + (kHalf ? b / 2 : b) * kAmxRows;
    [[maybe_unused]] const float* sb = sx + (kHalf ? b / 2 : b) * kAmxRows;
    auto one = [&](__m512& acc, int i) {
      if (i >= rows) return;  // not stored by the tiles
      const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(s + 16 * i));
      acc = _mm512_fmadd_ps(v, _mm512_mul_ps(dw, _mm512_set1_ps(d[i])), acc);
      if constexpr (kMin) acc = _mm512_fmadd_ps(mw, _mm512_set1_ps(sb[i]), acc);
    };
    one(a0, 0), one(a1, 1), one(a2, 2), one(a3, 3), one(a4, 4), one(a5, 5), one(a6, 6), one(a7, 7);
    one(a8, 8), one(a9, 9), one(a10, 10), one(a11, 11), one(a12, 12), one(a13, 13), one(a14, 14), one(a15, 15);
  };
  run_tile_pipeline(nb, issue0, issue1, prefetch, epilogue);
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3, out[4] = a4, out[5] = a5, out[6] = a6, out[7] = a7;
  out[8] = a8, out[9] = a9, out[10] = a10, out[11] = a11, out[12] = a12, out[13] = a13, out[14] = a14;
  out[15] = a15;
}

// The regrouped types' driver: weight rows [r0, r1) against batches of kAmxMinRows activation rows
// or more (K-quants: kAmxMinRowsKQuant; smaller batches take the VNNI kernels). Per pass over about
// 256 KiB of activation tiles (they stay in L2 while the weight groups go by) and per whole group g:
// prepare(g, first_pass) readies the group (the 4-bit types spread its codes to bytes), then
// unit(g, xs, dx, sx, acc, stream, rows) runs one activation tile against it (stream: the first tile of
// the first pass, which reads the group from memory; rows: the activation rows the tiles hold, fewer
// than 16 for a batch of fewer). The rows past the last whole group take the
// file-layout kernel of W.
template <class W, int kCodes = 32, class Prepare, class Unit>
void amx_r16_rows(const MatmulArgs& a, int64_t r0, int64_t r1, Prepare&& prepare, Unit&& unit) {
  const int64_t n_xt = (a.m + kAmxRows - 1) / kAmxRows;
  const int act_rows = n_xt == 1 ? static_cast<int>(a.m) : static_cast<int>(kAmxRows);
  load_tile_config(kCodes, act_rows);
  const int64_t nb = a.k / kQK8_0;
  thread_local std::vector<uint8_t> xbuf, dbuf, sbuf;
  const int64_t per_pass =
      std::max<int64_t>(1, (int64_t{256} << 10) / (nb * static_cast<int64_t>(sizeof(ActTileQ8))));
  ActTileQ8* xs = aligned64<ActTileQ8>(xbuf, static_cast<size_t>(std::min(per_pass, n_xt) * nb));
  float* dx = aligned64<float>(dbuf, static_cast<size_t>(std::min(per_pass, n_xt) * nb * kAmxRows));
  float* sx = aligned64<float>(sbuf, static_cast<size_t>(std::min(per_pass, n_xt) * nb * kAmxRows));
  // A single pass packs its activations once per product (a.xq8_id names them), not once per row range.
  thread_local uint64_t packed_id = 0;
  const bool one_pass = n_xt <= per_pass;
  for (int64_t t0 = 0; t0 < n_xt; t0 += per_pass) {
    const int64_t t1 = std::min(n_xt, t0 + per_pass);
    if (!one_pass || a.xq8_id == 0 || packed_id != a.xq8_id) {
      for (int64_t t = t0; t < t1; ++t) pack_act_tiles(a, t, xs + (t - t0) * nb, dx + (t - t0) * nb * kAmxRows, sx + (t - t0) * nb * kAmxRows);
    }
    packed_id = one_pass ? a.xq8_id : 0;
    for (int64_t g = r0 / kAmxRows; g * kAmxRows < r16_groups_end(a, r1); ++g) {
      prepare(g, t0 == 0);
      const __m512 bias = a.bias != nullptr ? _mm512_loadu_ps(a.bias + g * kAmxRows) : _mm512_setzero_ps();
      for (int64_t t = t0; t < t1; ++t) {
        __m512 acc[kAmxRows];
        unit(g, xs + (t - t0) * nb, dx + (t - t0) * nb * kAmxRows, sx + (t - t0) * nb * kAmxRows, acc,
             t0 == 0 && t == t0, act_rows);
        const int64_t i0 = t * kAmxRows, n_rows = std::min<int64_t>(kAmxRows, a.m - i0);
        for (int64_t i = 0; i < n_rows; ++i) {
          const __m512 v = a.bias != nullptr ? _mm512_add_ps(acc[i], bias) : acc[i];
          _mm512_storeu_ps(a.y + (i0 + i) * a.n_out + g * kAmxRows, v);
        }
      }
    }
  }
  _tile_release();
  r16_tail_rows<W>(a, r0, r1);
}

// DType::kQ8_0R16: the group's codes are the second tile operand as they lie in memory.
void amx_q8r16_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.m < kAmxMinRows) {
    q8r16_rows_vnni(a, r0, r1);
    return;
  }
  const int64_t nb = a.k / kQK8_0;
  const int64_t group_bytes = nb * kR16GroupBlockBytes;
  amx_r16_rows<WQ8_0>(
      a, r0, r1, [](int64_t, bool) {},
      [&](int64_t g, const ActTileQ8* xs, const float* dx, const float*, __m512(&acc)[kAmxRows], bool stream,
          int rows) {
        const uint8_t* base = a.w + static_cast<size_t>(g * group_bytes);
        amx_r16_unit<false>(xs, dx, nullptr, base, nullptr, base + nb * 32, nb, acc, stream, rows);
      });
}

// Nibbles (low: elements 4p .. 4p + 3 of one block, high: of another, for the 16 rows; 4 x 64 bytes at
// nib) spread to byte codes 0..15 in the second operand's layout: 8 x 64 bytes at lo_out and hi_out.
inline void spread_nibbles(const uint8_t* nib, int8_t* lo_out, int8_t* hi_out, int n) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int p = 0; p < n; ++p) {
    const __m512i w = _mm512_loadu_si512(nib + 64 * p);
    _mm512_store_si512(lo_out + 64 * p, _mm512_and_si512(w, low4));
    _mm512_store_si512(hi_out + 64 * p, _mm512_and_si512(_mm512_srli_epi16(w, 4), low4));
  }
}

// The first pass streams the weights: prefetch the next group's share of these `bytes` at p.
inline void prefetch_next_group(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + off + kPrefetchBytes), _MM_HINT_T1);
  }
}

// DType::kQ4_0R16 / kQ4_1R16: each 16-row group's nibbles become byte codes 0..15 in the second
// operand's layout (once per group and pass, for all its activation tiles), then the unit runs on them
// with the offset term: the same exact block sums and float operations as every Q4_0 / Q4_1 kernel.
template <bool kQ41>
void amx_q4r16_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.m < kAmxMinRows) {
    q4r16_rows_vnni<kQ41>(a, r0, r1);
    return;
  }
  constexpr int64_t kGroupBlockBytes = kQ41 ? kR16Q41GroupBlockBytes : kR16Q4GroupBlockBytes;
  const int64_t nb = a.k / kQK8_0;
  const int64_t group_bytes = nb * kGroupBlockBytes;
  thread_local std::vector<uint8_t> wbuf;
  int8_t* wq = aligned64<int8_t>(wbuf, static_cast<size_t>(nb * 512));
  auto prepare = [&](int64_t g, bool first_pass) {
    const uint8_t* base = a.w + static_cast<size_t>(g * group_bytes);
    const uint8_t* nib = base + nb * 32 * (kQ41 ? 2 : 1);
    for (int64_t b = 0; b < nb; ++b) {
      if (first_pass) prefetch_next_group(base + b * kGroupBlockBytes, kGroupBlockBytes);
      // block b's codes 4p .. 4p + 3 (low nibbles) and 16 + 4p .. (high)
      spread_nibbles(nib + b * 256, wq + b * 512, wq + b * 512 + 256, 4);
    }
  };
  amx_r16_rows<std::conditional_t<kQ41, WQ4_1, WQ4_0>>(
      a, r0, r1, prepare,
      [&](int64_t g, const ActTileQ8* xs, const float* dx, const float* sx, __m512(&acc)[kAmxRows], bool,
          int rows) {
        const uint8_t* base = a.w + static_cast<size_t>(g * group_bytes);
        amx_r16_unit<true>(xs, dx, sx, base, kQ41 ? base + nb * 32 : nullptr, reinterpret_cast<const uint8_t*>(wq),
                           nb, acc, false, rows);
      });
}

}  // namespace
}  // namespace llmopt::kernels
