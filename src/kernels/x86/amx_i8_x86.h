// W8A8 (DType::kI8Ch) on the AMX tiles (included only by amx.cc): int8 weight rows against int8
// activation rows, the sums over whole rows kept inside the tiles.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/x86/amx_tiles_x86.h"
#include "kernels/x86/matmul_x86.h"

namespace llmopt::kernels {
namespace {

// kI8Ch: int8 weight rows (one scale each) against int8 activation rows (one scale each, the
// MatmulArgs::xi8x8 interleaving). With no per-block scales the int32 sums run over the whole row
// inside the tiles, so each 16 x 16 output tile is stored once, not once per 32-element block.
// Steps of 64 codes: the weight tile is 16 rows x 64 codes read in place (the last step's codes
// copied zero-padded), the activation tile 16 rows of 64 bytes (row q: codes 4q..4q+3 of the 16
// activation rows), even and odd steps into two sum tiles added at the end (exact int32 sums). Each
// output then takes I8ColKernel's float operations, y = v * (s_w * s_x) or fma(v, s_w * s_x, bias):
// bit-identical to the other kernels of the type.
struct alignas(64) I8x16Step {
  int8_t qs[16][64];
};

void load_i8_tile_config() {
  TileConfig c;
  for (int t = 0; t < 6; ++t) {
    c.rows[t] = 16;
    c.colsb[t] = 64;
  }
  apply_tile_config(c);
}

// Activation rows [16 t, 16 t + 16) (8-row groups 2t, 2t + 1 of xi8x8) as n_steps tiles; zero past
// the row length and past the batch.
void pack_i8x16(const MatmulArgs& a, int64_t t, int64_t n_steps, I8x16Step* out) {
  const int64_t n_chunks = a.k_pad / 32, n_groups = (a.m + 7) / 8;
  for (int64_t st = 0; st < n_steps; ++st) {
    for (int h = 0; h < 2; ++h) {
      const int64_t c = 2 * st + h;
      for (int half = 0; half < 2; ++half) {
        const int64_t g = 2 * t + half;
        const bool have = c < n_chunks && g < n_groups;
        for (int q8 = 0; q8 < 8; ++q8) {
          const __m256i v = have ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                       a.xi8x8 + (g * n_chunks + c) * 256 + q8 * 32))
                                 : _mm256_setzero_si256();
          _mm256_store_si256(reinterpret_cast<__m256i*>(out[st].qs[h * 8 + q8] + half * 32), v);
        }
      }
    }
  }
}

template <class Ops>
void amx_i8ch_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  using Col = I8ColKernel<Ops>;
  const int64_t n16 = (r1 - r0) / kAmxRows * kAmxRows;
  if (a.xi8x8 == nullptr || a.m < kAmxMinRows || n16 == 0) {
    Col::run(a, r0, r1);
    return;
  }
  const int64_t r_amx = r0 + n16;
  load_i8_tile_config();
  const int64_t n_steps = (a.k + 63) / 64, full_steps = a.k / 64;
  const int64_t n_xt = (a.m + 15) / 16;
  const int64_t rb = static_cast<int64_t>(a.w_row_bytes);
  thread_local std::vector<uint8_t> xbuf;
  // Passes over about 256 KiB of packed activations, which stay in L2 while the weight rows go by.
  const int64_t per_pass =
      std::max<int64_t>(1, (int64_t{256} << 10) / (n_steps * static_cast<int64_t>(sizeof(I8x16Step))));
  I8x16Step* xs = aligned64<I8x16Step>(xbuf, static_cast<size_t>(std::min(per_pass, n_xt) * n_steps));
  alignas(64) int8_t tail[16][64];
  alignas(64) int32_t sums[2][kAmxRows * 16];
  alignas(64) float xscale[16];
  for (int64_t t0 = 0; t0 < n_xt; t0 += per_pass) {
    const int64_t t1 = std::min(n_xt, t0 + per_pass);
    for (int64_t t = t0; t < t1; ++t) pack_i8x16(a, t, n_steps, xs + (t - t0) * n_steps);
    for (int64_t r = r0; r < r_amx; r += kAmxRows) {
      const int8_t* w0 = reinterpret_cast<const int8_t*>(a.w_row(r));
      if (full_steps < n_steps) {
        const int64_t rest = a.k - 64 * full_steps;
        for (int n = 0; n < kAmxRows; ++n) {
          std::memset(tail[n], 0, 64);
          std::memcpy(tail[n], w0 + n * rb + 64 * full_steps, static_cast<size_t>(rest));
        }
      }
      for (int64_t t = t0; t < t1; ++t) {
        const I8x16Step* x = xs + (t - t0) * n_steps;
        _tile_zero(2);
        _tile_zero(5);
        int64_t st = 0;
        for (; st + 2 <= full_steps; st += 2) {
          _tile_loadd(0, w0 + 64 * st, rb);
          _tile_loadd(1, x[st].qs, 64);
          _tile_dpbssd(2, 0, 1);
          _tile_loadd(3, w0 + 64 * (st + 1), rb);
          _tile_loadd(4, x[st + 1].qs, 64);
          _tile_dpbssd(5, 3, 4);
        }
        for (; st < n_steps; ++st) {
          if (st < full_steps) {
            _tile_loadd(0, w0 + 64 * st, rb);
          } else {
            _tile_loadd(0, tail, 64);
          }
          _tile_loadd(1, x[st].qs, 64);
          _tile_dpbssd(2, 0, 1);
        }
        LLMOPT_TILE_STORE_SUMS(2, sums[0]);
        LLMOPT_TILE_STORE_SUMS(5, sums[1]);
        const int64_t i0 = t * kAmxRows, n_rows = std::min<int64_t>(kAmxRows, a.m - i0);
        for (int i = 0; i < 16; ++i) xscale[i] = i < n_rows ? a.x_scale8[i0 + i] : 0.0f;
        const __m512 xsv = _mm512_load_ps(xscale);
        __m512 acc[kAmxRows];
        for (int n = 0; n < kAmxRows; ++n) {
          const __m512i si =
              _mm512_add_epi32(_mm512_load_si512(sums[0] + 16 * n), _mm512_load_si512(sums[1] + 16 * n));
          const __m512 v = _mm512_cvtepi32_ps(si);
          const __m512 sc = _mm512_mul_ps(_mm512_set1_ps(a.w_scale[r + n]), xsv);
          acc[n] = a.bias != nullptr ? _mm512_fmadd_ps(v, sc, _mm512_set1_ps(a.bias[r + n])) : _mm512_mul_ps(v, sc);
        }
        transpose16(acc);  // acc[i]: activation row i against the 16 weight rows
        for (int64_t i = 0; i < n_rows; ++i) _mm512_storeu_ps(a.y + (i0 + i) * a.n_out + r, acc[i]);
      }
    }
  }
  _tile_release();
  if (r_amx < r1) Col::run(a, r_amx, r1);
}

}  // namespace
}  // namespace llmopt::kernels
