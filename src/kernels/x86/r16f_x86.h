// F32 and F16 weights regrouped by 16 rows (DType::kF32R16 / kF16R16, kernels/repack.h: element k of
// the 16 rows of a group side by side, one 512-bit vector per k). Every output is one chain of fmas
// over k in order, acc = fma(x[k], w[k], acc) from 0, then + bias: the 16 rows of a group are the 16
// lanes, the activation value is broadcast. Decode (one activation row) runs four groups at a time;
// batches run tiles of two groups x up to 12 activation rows (24 accumulators; per k two weight
// loads and one broadcast per row, no horizontal sums), the rows in passes that stay in L2. Both
// compute each output with the same operations, so a row's result never depends on the batch.
// Rows past the last whole group stay in the file layout (the plain float kernel, one row at a time,
// for every batch). Included only by the AVX-512 translation units; internal linkage like
// matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/lanes512_x86.h"
#include "kernels/x86/tiles_float_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

template <bool F16>
struct R16Float {
  static constexpr int64_t kBytes = F16 ? 2 : 4;
  using Plain = std::conditional_t<F16, WF16, WF32>;
  // The 16 rows' element k of the group at g.
  static __m512 load(const uint8_t* g, int64_t k) {
    if constexpr (F16) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g + 32 * k)));
    } else {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(g + 64 * k));
    }
  }
  static const uint8_t* group(const MatmulArgs& a, int64_t g) {
    return a.w + static_cast<size_t>(g) * kR16Rows * a.w_row_bytes;
  }
};

inline void store_r16f(const MatmulArgs& a, int64_t g, int64_t i, __m512 acc) {
  if (a.bias != nullptr) acc = _mm512_add_ps(acc, _mm512_loadu_ps(a.bias + g * kR16Rows));
  _mm512_storeu_ps(a.y + i * a.n_out + g * kR16Rows, acc);
}

// Activation row i against groups [g, g + G): G independent fma chains.
template <bool F16, int G>
inline void r16f_decode(const MatmulArgs& a, int64_t g, int64_t i) {
  using F = R16Float<F16>;
  const uint8_t* p[G];
  for (int j = 0; j < G; ++j) p[j] = F::group(a, g + j);
  const float* x = a.x + i * a.k;
  __m512 acc[G];
  for (int j = 0; j < G; ++j) acc[j] = _mm512_setzero_ps();
  // Prefetch ahead along each group's stream (the groups are kR16Rows * row bytes apart).
  constexpr int64_t kAheadK = 2048 / (16 * F::kBytes), kLineK = 64 / (16 * F::kBytes);
  for (int64_t k = 0; k < a.k; ++k) {
    if (k % kLineK == 0) {
      for (int j = 0; j < G; ++j) _mm_prefetch(reinterpret_cast<const char*>(p[j] + (k + kAheadK) * 16 * F::kBytes), _MM_HINT_T0);
    }
    const __m512 xb = _mm512_set1_ps(x[k]);
    for (int j = 0; j < G; ++j) acc[j] = _mm512_fmadd_ps(xb, F::load(p[j], k), acc[j]);
  }
  for (int j = 0; j < G; ++j) store_r16f(a, g + j, i, acc[j]);
}

// Activation rows packed by tiles of 12: xp[k * 12 + i] is x[i0 + i][k] (rows past the batch: 0).
constexpr int kR16fTileRows = 12;

// The MR (<= 12) packed activation rows at xp against groups g and g + 1: rows [i0, i0 + MR).
template <bool F16, int MR>
inline void r16f_tile(const MatmulArgs& a, int64_t g, int64_t i0, const float* xp) {
  using F = R16Float<F16>;
  const uint8_t* p0 = F::group(a, g);
  const uint8_t* p1 = F::group(a, g + 1);
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < a.k; ++k, xp += kR16fTileRows) {
    const __m512 w0 = F::load(p0, k), w1 = F::load(p1, k);
    for (int i = 0; i < MR; ++i) {
      const __m512 xb = _mm512_set1_ps(xp[i]);
      acc[i][0] = _mm512_fmadd_ps(xb, w0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(xb, w1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    store_r16f(a, g, i0 + i, acc[i][0]);
    store_r16f(a, g + 1, i0 + i, acc[i][1]);
  }
}

// Rows [i0, i1) (packed at xp by tiles of 12) against a pair of groups.
template <bool F16>
inline void r16f_pair(const MatmulArgs& a, int64_t g, int64_t i0, int64_t i1, const float* xp) {
  const int64_t tile_floats = a.k * kR16fTileRows;
  int64_t i = i0;
  for (; i + kR16fTileRows <= i1; i += kR16fTileRows, xp += tile_floats) r16f_tile<F16, 12>(a, g, i, xp);
  switch (i1 - i) {
#define LLMOPT_R16F_CASE(n)         \
  case n:                           \
    r16f_tile<F16, n>(a, g, i, xp); \
    break;
    LLMOPT_R16F_CASE(11)
    LLMOPT_R16F_CASE(10)
    LLMOPT_R16F_CASE(9)
    LLMOPT_R16F_CASE(8)
    LLMOPT_R16F_CASE(7)
    LLMOPT_R16F_CASE(6)
    LLMOPT_R16F_CASE(5)
    LLMOPT_R16F_CASE(4)
    LLMOPT_R16F_CASE(3)
    LLMOPT_R16F_CASE(2)
    LLMOPT_R16F_CASE(1)
#undef LLMOPT_R16F_CASE
    default:
      break;
  }
}

// All m activation rows in tiles of 12 rows, k-major: tile t holds x[12 t + i][k] at k * 12 + i (the
// last tile's missing rows are 0). Once per product and thread (MatmulArgs::xq8_id names the product).
inline const float* pack_r16f_rows(const MatmulArgs& a) {
  thread_local std::vector<float> buf;
  thread_local uint64_t packed_id = 0;
  if (a.xq8_id != 0 && a.xq8_id == packed_id) return buf.data();
  const int64_t n_tiles = (a.m + kR16fTileRows - 1) / kR16fTileRows;
  const size_t need = static_cast<size_t>(n_tiles * a.k * kR16fTileRows);
  if (buf.size() < need) buf.resize(need);
  float* out = buf.data();
  constexpr __mmask16 kTileLanes = (1u << kR16fTileRows) - 1;
  for (int64_t t = 0; t < n_tiles; ++t, out += a.k * kR16fTileRows) {
    const int64_t rows = std::min<int64_t>(kR16fTileRows, a.m - t * kR16fTileRows);
    const float* x = a.x + t * kR16fTileRows * a.k;
    int64_t k0 = 0;
    for (; k0 + 16 <= a.k; k0 += 16) {  // 16 columns of the tile's rows at a time, transposed
      __m512 v[16];
      for (int i = 0; i < 16; ++i) v[i] = i < rows ? _mm512_loadu_ps(x + i * a.k + k0) : _mm512_setzero_ps();
      transpose16(v);
      for (int c = 0; c < 16; ++c) _mm512_mask_storeu_ps(out + (k0 + c) * kR16fTileRows, kTileLanes, v[c]);
    }
    for (; k0 < a.k; ++k0) {
      for (int i = 0; i < kR16fTileRows; ++i) out[k0 * kR16fTileRows + i] = i < rows ? x[i * a.k + k0] : 0.0f;
    }
  }
  packed_id = a.xq8_id;
  return buf.data();
}

// Activation rows per pass: about this many bytes of them, so a pass stays in L2 while the weight
// groups go by.
constexpr int64_t kR16fPassBytes = int64_t{1} << 20;

template <bool F16>
void r16f_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  using F = R16Float<F16>;
  const int64_t end = std::min(r1, a.n_out / kR16Rows * kR16Rows);
  const int64_t g0 = r0 / kR16Rows, g1 = end > r0 ? end / kR16Rows : g0;
  if (a.m == 1) {
    int64_t g = g0;
    for (; g + 4 <= g1; g += 4) r16f_decode<F16, 4>(a, g, 0);
    for (; g < g1; ++g) r16f_decode<F16, 1>(a, g, 0);
  } else {
    const int64_t pass = std::max<int64_t>(12, kR16fPassBytes / (a.k * 4) / 12 * 12);
    for (int64_t i0 = 0; i0 < a.m; i0 += pass) {
      const int64_t i1 = std::min(a.m, i0 + pass);
      int64_t g = g0;
      const float* xp = g + 2 <= g1 ? pack_r16f_rows(a) + i0 * a.k : nullptr;  // i0: a multiple of 12
      for (; g + 2 <= g1; g += 2) r16f_pair<F16>(a, g, i0, i1, xp);
      if (g < g1) {
        for (int64_t i = i0; i < i1; ++i) r16f_decode<F16, 1>(a, g, i);
      }
    }
  }
  // Rows past the last whole group: the file layout's kernel, one row at a time for every batch.
  for (int64_t r = std::max(r0, end); r < r1; ++r) {
    for (int64_t i = 0; i < a.m; ++i) FloatKernel<typename F::Plain, Lanes16>::template tile<1, 1>(a, r, i);
  }
}

}  // namespace
}  // namespace llmopt::kernels
