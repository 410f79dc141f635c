// F32 and F16 weights regrouped by 16 rows (DType::kF32R16 / kF16R16, kernels/repack.h: element k of
// the 16 rows of a group side by side, 64 or 32 bytes per k). Every output is one chain of fmas over k
// in order, acc = fma(x[k], w[k], acc) from 0, then + bias: the 16 rows of a group are the lanes of
// one 512-bit vector or of two 256-bit ones, the activation value is broadcast. Decode (one activation
// row) runs four groups at a time; batches run tiles of R16fShape<L>::kGroups groups x up to kRows
// activation rows (AVX2: 1 x 4, 8 accumulators of 8 lanes; AVX-512: 2 x 12, 24 of 16; per k one load per
// weight vector and one broadcast per row, no horizontal sums), the rows packed k-major once per
// product and thread and taken in passes that stay in L2. Decode and batches compute each output with
// the same operations whatever the lane width, so a row's result never depends on the batch or the
// ISA. Rows past the last whole group stay in the file layout (the plain float kernel, one row at a
// time, for every batch). The shape of each lane width is R16fShape<L> (Lanes8 here, Lanes16 in
// r16f512_x86.h). Internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/tiles_float_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

template <class L>
struct R16fShape;

// Activation rows x[r][0, k) for r < rows (<= TR) into a k-major tile: out[c * TR + r] (rows past
// `rows`: 0).
template <int TR>
inline void pack_r16f_tile_plain(const float* x, int64_t rows, int64_t k, float* out) {
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t r = rows; r < TR; ++r) out[c * TR + r] = 0.0f;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * k;
    for (int64_t c = 0; c < k; ++c) out[c * TR + r] = xr[c];
  }
}

// 256-bit lanes: a group is two vectors, so a tile of one group x 4 rows holds 8 accumulators, the
// two weight vectors and the broadcasts in the 16 registers (with 6 rows, 12 accumulators, the
// compiler hoisted the broadcasts and spilled three accumulators: 31 against 39 GMAC/s per core on
// Zen 3, f32 2304 x 768, m = 64; 5 rows measured the same as 4). Zen 3 / client cores have L2s of
// 256 KiB - 1.25 MiB: passes of 256 KiB of activations.
template <>
struct R16fShape<Lanes8> {
  static constexpr int kGroups = 1, kRows = 4;
  static constexpr int64_t kPassBytes = int64_t{256} << 10;
  static void pack_tile(const float* x, int64_t rows, int64_t k, float* out) {
    pack_r16f_tile_plain<kRows>(x, rows, k, out);
  }
};

template <class L, bool F16>
struct R16Float {
  using V = typename L::V;
  static constexpr int64_t kBytes = F16 ? 2 : 4;
  static constexpr int kVecs = kR16Rows / L::kN;  // vectors per group
  using Plain = std::conditional_t<F16, WF16, WF32>;
  // Lanes [v * N, v * N + N) of the 16 rows' element k of the group at g.
  static V load(const uint8_t* g, int64_t k, int v) { return L::template load_w<Plain>(g, kR16Rows * k + v * L::kN); }
  static const uint8_t* group(const MatmulArgs& a, int64_t g) {
    return a.w + static_cast<size_t>(g) * kR16Rows * a.w_row_bytes;
  }
  // Output row i, lanes [v * N, v * N + N) of group g.
  static void store(const MatmulArgs& a, int64_t g, int64_t i, int v, V acc) {
    const int64_t o = g * kR16Rows + v * L::kN;
    if (a.bias != nullptr) acc = L::add(acc, L::loadu(a.bias + o));
    L::storeu(a.y + i * a.n_out + o, acc);
  }
};

// Activation row i against groups [g, g + G): G x kVecs independent fma chains.
template <class L, bool F16, int G>
inline void r16f_decode(const MatmulArgs& a, int64_t g, int64_t i) {
  using F = R16Float<L, F16>;
  constexpr int kV = F::kVecs;
  const uint8_t* p[G];
  for (int j = 0; j < G; ++j) p[j] = F::group(a, g + j);
  const float* x = a.x + i * a.k;
  typename L::V acc[G][kV];
  for (int j = 0; j < G; ++j) {
    for (int v = 0; v < kV; ++v) acc[j][v] = L::zero();
  }
  // Prefetch ahead along each group's stream (the groups are kR16Rows * row bytes apart).
  constexpr int64_t kAheadK = 2048 / (16 * F::kBytes), kLineK = 64 / (16 * F::kBytes);
  for (int64_t k = 0; k < a.k; ++k) {
    if (k % kLineK == 0) {
      for (int j = 0; j < G; ++j) _mm_prefetch(reinterpret_cast<const char*>(p[j] + (k + kAheadK) * 16 * F::kBytes), _MM_HINT_T0);
    }
    const auto xb = L::set1(x[k]);
    for (int j = 0; j < G; ++j) {
      for (int v = 0; v < kV; ++v) acc[j][v] = L::fmadd(xb, F::load(p[j], k, v), acc[j][v]);
    }
  }
  for (int j = 0; j < G; ++j) {
    for (int v = 0; v < kV; ++v) F::store(a, g + j, i, v, acc[j][v]);
  }
}

// The MR (<= kRows) packed activation rows at xp (tiles of kRows, k-major) against the kGroups groups
// from g: rows [i0, i0 + MR).
template <class L, bool F16, int MR>
inline void r16f_tile(const MatmulArgs& a, int64_t g, int64_t i0, const float* xp) {
  using F = R16Float<L, F16>;
  constexpr int kG = R16fShape<L>::kGroups, kTR = R16fShape<L>::kRows, kV = F::kVecs;
  const uint8_t* p[kG];
  for (int j = 0; j < kG; ++j) p[j] = F::group(a, g + j);
  typename L::V acc[MR][kG * kV];
  for (int i = 0; i < MR; ++i) {
    for (int n = 0; n < kG * kV; ++n) acc[i][n] = L::zero();
  }
  for (int64_t k = 0; k < a.k; ++k, xp += kTR) {
    typename L::V w[kG * kV];
    for (int j = 0; j < kG; ++j) {
      for (int v = 0; v < kV; ++v) w[j * kV + v] = F::load(p[j], k, v);
    }
    for (int i = 0; i < MR; ++i) {
      const auto xb = L::set1(xp[i]);
      for (int n = 0; n < kG * kV; ++n) acc[i][n] = L::fmadd(xb, w[n], acc[i][n]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int n = 0; n < kG * kV; ++n) F::store(a, g + n / kV, i0 + i, n % kV, acc[i][n]);
  }
}

// Rows [i0, i1) (packed at xp by tiles of kRows) against the kGroups groups from g: full tiles, then
// one tile of the rows left (MR from kRows - 1 down to 1, chosen at run time).
template <class L, bool F16, int MR = R16fShape<L>::kRows>
inline void r16f_tail(const MatmulArgs& a, int64_t g, int64_t i, int64_t n, const float* xp) {
  if constexpr (MR > 0) {
    if (n == MR) {
      r16f_tile<L, F16, MR>(a, g, i, xp);
    } else {
      r16f_tail<L, F16, MR - 1>(a, g, i, n, xp);
    }
  }
}

template <class L, bool F16>
inline void r16f_groups(const MatmulArgs& a, int64_t g, int64_t i0, int64_t i1, const float* xp) {
  constexpr int kTR = R16fShape<L>::kRows;
  const int64_t tile_floats = a.k * kTR;
  int64_t i = i0;
  for (; i + kTR <= i1; i += kTR, xp += tile_floats) r16f_tile<L, F16, kTR>(a, g, i, xp);
  if (i < i1) r16f_tail<L, F16, kTR - 1>(a, g, i, i1 - i, xp);
}

// All m activation rows in tiles of kRows rows, k-major: tile t holds x[kRows t + i][k] at k * kRows +
// i (the last tile's missing rows are 0). Once per product and thread (MatmulArgs::xq8_id names the
// product).
template <class L>
inline const float* pack_r16f_rows(const MatmulArgs& a) {
  constexpr int kTR = R16fShape<L>::kRows;
  thread_local std::vector<float> buf;
  thread_local uint64_t packed_id = 0;
  if (a.xq8_id != 0 && a.xq8_id == packed_id) return buf.data();
  const int64_t n_tiles = (a.m + kTR - 1) / kTR;
  const size_t need = static_cast<size_t>(n_tiles * a.k * kTR);
  if (buf.size() < need) buf.resize(need);
  float* out = buf.data();
  for (int64_t t = 0; t < n_tiles; ++t, out += a.k * kTR) {
    R16fShape<L>::pack_tile(a.x + t * kTR * a.k, std::min<int64_t>(kTR, a.m - t * kTR), a.k, out);
  }
  packed_id = a.xq8_id;
  return buf.data();
}

template <class L, bool F16>
void r16f_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  using F = R16Float<L, F16>;
  using S = R16fShape<L>;
  const int64_t end = std::min(r1, a.n_out / kR16Rows * kR16Rows);
  const int64_t g0 = r0 / kR16Rows, g1 = end > r0 ? end / kR16Rows : g0;
  if (a.m == 1) {
    int64_t g = g0;
    for (; g + 4 <= g1; g += 4) r16f_decode<L, F16, 4>(a, g, 0);
    for (; g < g1; ++g) r16f_decode<L, F16, 1>(a, g, 0);
  } else {
    const int64_t pass = std::max<int64_t>(S::kRows, S::kPassBytes / (a.k * 4) / S::kRows * S::kRows);
    for (int64_t i0 = 0; i0 < a.m; i0 += pass) {
      const int64_t i1 = std::min(a.m, i0 + pass);
      int64_t g = g0;
      // i0: a multiple of kRows
      const float* xp = g + S::kGroups <= g1 ? pack_r16f_rows<L>(a) + i0 * a.k : nullptr;
      for (; g + S::kGroups <= g1; g += S::kGroups) r16f_groups<L, F16>(a, g, i0, i1, xp);
      for (; g < g1; ++g) {
        for (int64_t i = i0; i < i1; ++i) r16f_decode<L, F16, 1>(a, g, i);
      }
    }
  }
  // Rows past the last whole group: the file layout's kernel, one row at a time for every batch.
  for (int64_t r = std::max(r0, end); r < r1; ++r) {
    for (int64_t i = 0; i < a.m; ++i) FloatKernel<typename F::Plain, L>::template tile<1, 1>(a, r, i);
  }
}

}  // namespace
}  // namespace llmopt::kernels
