// AMX kernels (built with the AVX-512 + VNNI flags of avx512.cc plus -mamx-tile -mamx-int8; see
// kernels.cmake): avx512.cc's kernels, except that the 32-element block types (Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1, q4_1_g128) against batches of kAmxMinRows activation rows or more (batched decode, prefill,
// verify passes) go through the AMX tile unit.
//
// One TDPBSSD multiplies 16 weight rows x one block (their 32 codes, signed or 0..31, gathered once
// per pass into one contiguous tile) by the same block of 16 activation rows (two BlockQ8x8 side by
// side: 4 consecutive codes of each row per 32-bit group, the layout of the second operand) into
// 16 x 16 exact int32 block dot products D_b. Each output element then takes the same float
// operations as in every other kernel of its type (tiles_blockdot_x86.h):
//     for each block b in order: acc = fma(float(D_b), d_w * d_x, acc)
//                                acc = fma(m_w, s_x, acc)          (types with an offset m)
//     y = acc (+ bias)
// so the results are bit-identical to the AVX2 / AVX-512 kernels and to a one-row call, whatever the
// batch. Weight rows past the last whole group of 16 of a call take avx512.cc's kernels.
//
// Linux hands the AMX register state to a process only on request (arch_prctl
// ARCH_REQ_XCOMP_PERM): amx::usable() asks once; without it the ISA is reported unsupported.
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/x86/act_x86.h"
#include "kernels/x86/attn_x86.h"
#include "kernels/x86/lanes512_x86.h"
#include "kernels/x86/matmul_x86.h"
#include "kernels/x86/norm_x86.h"
#include "kernels/x86/r16_x86.h"
#include "kernels/x86/rows512_x86.h"
#include "kernels/x86/vec_x86.h"

namespace llmopt::kernels {
namespace {

struct AmxVnniOps {
  using FloatLanes = Lanes16;  // float weights: 16 lane sums per output
  using WideRows = kernels::WideRows;  // Q4_0 / Q4_1 decode: 16 rows x 3 blocks per 512-bit step
  static __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};

template <class W>
using Generic = BlockDotKernel<W, AmxVnniOps>;

// The tile configuration (palette 1), two sets for alternate blocks: tiles 0 / 3 = 16 weight rows x
// 32 codes; tiles 1 / 4 = 16 activation rows, 8 rows of 64 bytes (row q: codes 4q..4q+3 of each of
// the 16 activation rows); tiles 2 / 5 = the 16 x 16 int32 block dot products, one row per weight row.
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// ldtilecfg reading all 64 bytes of c. GCC 12's _tile_loadconfig declares a read of only the first 8
// bytes, so the row and column counts stored after them may be dropped as dead stores (seen: a tile
// configuration of zeros and an Illegal instruction at the first tile load).
void apply_tile_config(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" : : "m"(c)); }

// codes: the codes per block of one tile product, 32, or 16 for Q6_K's half blocks (each with its own
// scale): tiles 0 / 3 then hold 16 rows x 16 codes and tiles 1 / 4 4 rows of 64 bytes.
// act_rows (the regrouped kernels, whose tiles 0 / 3 and 2 / 5 have a row per activation row): a batch
// of fewer than 16 rows configures only those, so the products, stores and sums cost what it uses.
void load_tile_config(int codes = 32, int act_rows = 16) {
  TileConfig c;
  for (int s : {0, 3}) {
    c.rows[s] = static_cast<uint8_t>(act_rows);
    c.colsb[s] = static_cast<uint16_t>(codes);
    c.rows[s + 1] = static_cast<uint8_t>(codes / 4);
    c.colsb[s + 1] = 64;
    c.rows[s + 2] = static_cast<uint8_t>(act_rows);
    c.colsb[s + 2] = 64;
  }
  apply_tile_config(c);
}

constexpr int64_t kAmxRows = 16;  // weight rows and activation rows per tile

// Tile t's 16 x 16 int32 sums into out (64-byte rows). GCC's _tile_stored clobbers all of memory,
// which kept the 16 float accumulators of amx_unit in memory (a load and a store around every fma);
// this one tells the compiler the exact 1 KiB it writes.
#define LLMOPT_TILE_STORE_SUMS(t, out)                                              \
  __asm__ volatile("tilestored %%tmm" #t ", (%1,%2,1)"                               \
                   : "=m"(*reinterpret_cast<int32_t(*)[kAmxRows * 16]>(out))        \
                   : "r"(out), "r"(int64_t{64}))
// From this many activation rows on (where the column layout MatmulArgs::xq8 exists) the tiles, even
// mostly empty, are at least as fast as avx512.cc's kernels (bench_kernels, Q8_0 / Q4_1, m = 5..9).
constexpr int64_t kAmxMinRows = 5;
// The regrouped K-quants prepare each group (scales, codes spread to bytes) before the tiles run, so
// their tiles pay from 8 rows on (bench_kernels, 4096 x 4096, m = 5..8: VNNI faster at 5-6, even at 7-8).
constexpr int64_t kAmxMinRowsKQuant = 8;

// One block of 16 activation rows in the layout of the second tile operand (from two BlockQ8x8, the
// second all zero past the batch).
struct alignas(64) BlockQ8x16 {
  int8_t qs[8][64];
  float d[16];
  float s[16];  // d * (sum of the row's codes): the term of a weight offset m
};

// In place: r[i][j] <- r[j][i] for a 16 x 16 block of floats.
void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + e], 128-bit lane L: element 4L + e of rows 4k .. 4k + 3.
  __m512 u[16];
  for (int k = 0; k < 4; ++k) {
    const __m512d a0 = _mm512_castps_pd(t[4 * k]), a1 = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d b0 = _mm512_castps_pd(t[4 * k + 2]), b1 = _mm512_castps_pd(t[4 * k + 3]);
    u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
    u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
    u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
    u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
  }
  for (int e = 0; e < 4; ++e) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0x88), v1 = _mm512_shuffle_f32x4(u[e], u[4 + e], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + e] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[4 + e] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + e] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// Where block b of the 16 weight rows' codes is: codes + b * block_step, rows row_stride bytes apart.
struct WeightTiles {
  const int8_t* codes = nullptr;
  int64_t block_step = 0;
  int64_t row_stride = 0;
};

// One unit's blocks on the two tile sets: block b + 1's product (issue0 / issue1: tiles 0-2 / 3-5)
// is issued before block b's sums are stored, and each block's sums are read back one step later
// (epilogue(b, sums); the epilogue of block b - 1 runs in between), so the loads do not wait on the
// tile store. prefetch(b) runs once per block.
template <class Issue0, class Issue1, class Prefetch, class Epilogue>
__attribute__((always_inline)) inline void run_tile_pipeline(int64_t nb, Issue0& issue0, Issue1& issue1,
                                                             Prefetch& prefetch, Epilogue& epilogue) {
  alignas(64) int32_t sums[2][kAmxRows * 16];
  issue0(0);
  for (int64_t b = 0; b < nb; b += 2) {
    if (b + 1 < nb) issue1(b + 1);
    prefetch(b);
    LLMOPT_TILE_STORE_SUMS(2, sums[0]);
    if (b > 0) epilogue(b - 1, sums[1]);
    if (b + 1 < nb) {
      if (b + 2 < nb) issue0(b + 2);
      prefetch(b + 1);
      LLMOPT_TILE_STORE_SUMS(5, sums[1]);
      epilogue(b, sums[0]);
    }
  }
  if (nb % 2 == 1) {
    epilogue(nb - 1, sums[0]);
  } else {
    epilogue(nb - 1, sums[1]);
  }
}

// 16 weight rows (wt: their codes, signed or 0..31) against 16 activation rows (xs, [block]), all
// blocks. dw, mw: the rows' block scales and offsets as f32, [block][16] (mw only for types with an
// offset: acc = fma(m_w, s_x, acc) after each block's fma). The tile unit runs its instructions in
// order and a product takes several times its issue interval to complete, so block b + 1's product
// is issued before block b's sums are stored. acc[n]: weight row n against the 16 activation rows.
template <class W>
void amx_unit(const BlockQ8x16* xs, const float* dw, const float* mw, const WeightTiles& wt, int64_t nb,
              __m512 (&out)[kAmxRows], const uint8_t* pf, int64_t pf_bytes) {
  // Prefetch [pf, pf + pf_bytes) (the next 16 weight rows, when they come from memory), a share per
  // block, so that streaming them overlaps this tile's products.
  auto prefetch = [&](int64_t b) {
    if (pf == nullptr) return;
    for (int64_t off = b * pf_bytes / nb / 64 * 64; off < (b + 1) * pf_bytes / nb; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(pf + off), _MM_HINT_T0);
    }
  };
  // (GCC's tile intrinsics take the tile numbers as literal tokens.)
  auto issue0 = [&](int64_t b) {
    _tile_loadd(0, wt.codes + b * wt.block_step, wt.row_stride);
    _tile_loadd(1, xs[b].qs, 64);
    _tile_zero(2);
    _tile_dpbssd(2, 0, 1);
  };
  auto issue1 = [&](int64_t b) {
    _tile_loadd(3, wt.codes + b * wt.block_step, wt.row_stride);
    _tile_loadd(4, xs[b].qs, 64);
    _tile_zero(5);
    _tile_dpbssd(5, 3, 4);
  };
  // The 16 sums live in named variables: an array of them stayed in memory (GCC kept a load and a
  // store around every fma).
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0,
         a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
  auto epilogue = [&](int64_t b, const int32_t* s) {
    const __m512 dx = _mm512_load_ps(xs[b].d);
    [[maybe_unused]] const __m512 sx = _mm512_load_ps(xs[b].s);
    const float* d = dw + b * kAmxRows;
    [[maybe_unused]] const float* m = mw + b * kAmxRows;
    auto one = [&](__m512& acc, int n) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512(s + 16 * n));
      // d_w * d_x: the same float product as every other kernel of these types
      acc = _mm512_fmadd_ps(v, _mm512_mul_ps(_mm512_set1_ps(d[n]), dx), acc);
      if constexpr (W::kHasMin) acc = _mm512_fmadd_ps(_mm512_set1_ps(m[n]), sx, acc);
    };
    one(a0, 0), one(a1, 1), one(a2, 2), one(a3, 3), one(a4, 4), one(a5, 5), one(a6, 6), one(a7, 7);
    one(a8, 8), one(a9, 9), one(a10, 10), one(a11, 11), one(a12, 12), one(a13, 13), one(a14, 14), one(a15, 15);
  };
  run_tile_pipeline(nb, issue0, issue1, prefetch, epilogue);
  out[0] = a0, out[1] = a1, out[2] = a2, out[3] = a3, out[4] = a4, out[5] = a5, out[6] = a6, out[7] = a7;
  out[8] = a8, out[9] = a9, out[10] = a10, out[11] = a11, out[12] = a12, out[13] = a13, out[14] = a14;
  out[15] = a15;
}

// The 16 activation rows of 8-row groups g, g + 1 (MatmulArgs::xq8) as BlockQ8x16, [block].
void pack_q8x16(const MatmulArgs& a, int64_t g, int64_t n_groups, BlockQ8x16* out) {
  const int64_t nb = a.k / kQK8_0;
  const BlockQ8x8* x0 = a.xq8 + g * nb;
  const BlockQ8x8* x1 = g + 1 < n_groups ? a.xq8 + (g + 1) * nb : nullptr;
  for (int64_t b = 0; b < nb; ++b) {
    for (int q = 0; q < 8; ++q) {
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(x0[b].qs[q]));
      const __m256i hi =
          x1 != nullptr ? _mm256_load_si256(reinterpret_cast<const __m256i*>(x1[b].qs[q])) : _mm256_setzero_si256();
      _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].qs[q]), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].qs[q] + 32), hi);
    }
    _mm256_store_ps(out[b].d, _mm256_load_ps(x0[b].d));
    _mm256_store_ps(out[b].d + 8, x1 != nullptr ? _mm256_load_ps(x1[b].d) : _mm256_setzero_ps());
    _mm256_store_ps(out[b].s, _mm256_load_ps(x0[b].s));
    _mm256_store_ps(out[b].s + 8, x1 != nullptr ? _mm256_load_ps(x1[b].s) : _mm256_setzero_ps());
  }
}

// The f16 value at byte offset off of block b of 16 rows (row_bytes apart), for every block, as f32
// in [block][16 rows] order (the same values as load_half): one gather and one conversion per block.
// A gather element reads 4 bytes from the value on, within its block.
inline void gather_halves16(const uint8_t* row0, int64_t row_bytes, int64_t step, int64_t off, int64_t nb,
                            float* out) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(static_cast<int>(row_bytes)));
  for (int64_t b = 0; b < nb; ++b) {
    const __m512i v = _mm512_i32gather_epi32(idx, row0 + off + b * step, 1);
    _mm512_store_ps(out + b * kAmxRows, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)));
  }
}

// Weight rows [r, r + 16): scales and offsets as [block][16 rows] f32, as W::load gives them (the
// same values every kernel of the type uses), and where the tiles find the codes: Q8_0's in place
// (the tile loads read 16 rows a stride apart; gathering them into one contiguous tile was no faster,
// for batched decode slower: the tile loads waited for those stores), the other types' decoded into wq
// as [block][16 rows][32]. The f16 scales (and offsets) of a block are gathered for the 16 rows at
// once: converted one by one, they held about a third of the batched-decode profile of this function.
template <class W>
WeightTiles pack_weights16(const MatmulArgs& a, int64_t r, int8_t* wq, float* dw, float* mw, bool prefetch) {
  const int64_t nb = a.k / kQK8_0;
  const int64_t rb = static_cast<int64_t>(a.w_row_bytes);
  if (prefetch) {  // batched decode streams the weights from memory
    for (int n = 0; n < kAmxRows; ++n) {
      const uint8_t* row = a.w_row(r + n);
      for (int64_t off = 0; off < rb; off += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(row + off + kPrefetchBytes), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(row + off + kPrefetchNear), _MM_HINT_T0);
      }
    }
  }
  if constexpr (kHalfScales<W>) {
    gather_halves16(a.w_row(r), rb, W::kBlockBytes, W::kHalfScale, nb, dw);
    if constexpr (kHalfMins<W>) {
      gather_halves16(a.w_row(r), rb, W::kBlockBytes, W::kHalfMin, nb, mw);
    } else if constexpr (kMinFromD<W>) {
      for (int64_t i = 0; i < nb * kAmxRows; ++i) mw[i] = dw[i] * W::kMinPerD;  // as W::load computes it
    }
  }
  if constexpr (!DirectCodes<W>) {
    for (int n = 0; n < kAmxRows; ++n) {
      const uint8_t* row = a.w_row(r + n);
      for (int64_t b = 0; b < nb; ++b) {
        const WBlock wb = W::load(row, b);
        if constexpr (!kHalfScales<W>) {
          dw[b * kAmxRows + n] = _mm256_cvtss_f32(wb.d);
          if constexpr (W::kHasMin) mw[b * kAmxRows + n] = wb.m;
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(wq + (b * kAmxRows + n) * kQK8_0), wb.q);
      }
    }
  } else {
    static_assert(kHalfScales<W>, "direct codes come with f16 scales");
  }
  if constexpr (DirectCodes<W>) {
    return {reinterpret_cast<const int8_t*>(W::codes(a.w_row(r), 0)), W::kBlockBytes, rb};
  } else {
    return {wq, kAmxRows * kQK8_0, kQK8_0};
  }
}

template <class T>
T* aligned64(std::vector<uint8_t>& buf, size_t n) {
  buf.resize(n * sizeof(T) + 64);
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
}

// Activation rows by 16 (the last tile zero-padded), weight rows by 16 (the rest, and batches under
// kAmxMinRows rows, through avx512.cc's kernels).
template <class W>
void amx_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  const int64_t n16 = (r1 - r0) / kAmxRows * kAmxRows;
  if (a.xq8 == nullptr || a.m < kAmxMinRows || n16 == 0) {
    Generic<W>::run(a, r0, r1);
    return;
  }
  const int64_t r_amx = r0 + n16;
  load_tile_config();
  const int64_t nb = a.k / kQK8_0;
  const int64_t n_groups = (a.m + 7) / 8, n_xt = (n_groups + 1) / 2;
  thread_local std::vector<uint8_t> xbuf, wbuf, dbuf, mbuf;
  // Passes over about 256 KiB of activations (they stay in L2 while the weight rows go by); per pass
  // and 16 weight rows, their codes and scales are gathered once for all the pass's activation tiles.
  const int64_t per_pass =
      std::max<int64_t>(1, (int64_t{256} << 10) / (nb * static_cast<int64_t>(sizeof(BlockQ8x16))));
  BlockQ8x16* xs = aligned64<BlockQ8x16>(xbuf, static_cast<size_t>(std::min(per_pass, n_xt) * nb));
  int8_t* wq = aligned64<int8_t>(wbuf, static_cast<size_t>(nb * kAmxRows * kQK8_0));
  float* dw = aligned64<float>(dbuf, static_cast<size_t>(nb * kAmxRows));
  float* mw = aligned64<float>(mbuf, static_cast<size_t>(nb * kAmxRows));
  // A single pass packs its activations once per product (a.xq8_id), not once per row range: the
  // product hands each thread several ranges.
  thread_local uint64_t packed_id = 0;
  const bool one_pass = n_xt <= per_pass;
  for (int64_t t0 = 0; t0 < n_xt; t0 += per_pass) {
    const int64_t t1 = std::min(n_xt, t0 + per_pass);
    if (!one_pass || a.xq8_id == 0 || packed_id != a.xq8_id) {
      for (int64_t t = t0; t < t1; ++t) pack_q8x16(a, 2 * t, n_groups, xs + (t - t0) * nb);
    }
    packed_id = one_pass ? a.xq8_id : 0;
    for (int64_t r = r0; r < r_amx; r += kAmxRows) {
      const WeightTiles wt = pack_weights16<W>(a, r, wq, dw, mw, t0 == 0);
      const __m512 bias = a.bias != nullptr ? _mm512_loadu_ps(a.bias + r) : _mm512_setzero_ps();
      for (int64_t t = t0; t < t1; ++t) {
        __m512 acc[kAmxRows];
        // The first pass streams the weights: the next 16 rows are fetched during the first tile.
        const bool pf = t0 == 0 && t == t0 && r + 2 * kAmxRows <= r_amx;
        amx_unit<W>(xs + (t - t0) * nb, dw, mw, wt, nb, acc, pf ? a.w_row(r + kAmxRows) : nullptr,
                    kAmxRows * static_cast<int64_t>(a.w_row_bytes));
        transpose16(acc);  // acc[i]: activation row i against the 16 weight rows
        const int64_t i0 = t * kAmxRows, n_rows = std::min<int64_t>(kAmxRows, a.m - i0);
        for (int64_t i = 0; i < n_rows; ++i) {
          const __m512 v = a.bias != nullptr ? _mm512_add_ps(acc[i], bias) : acc[i];
          _mm512_storeu_ps(a.y + (i0 + i) * a.n_out + r, v);
        }
      }
    }
  }
  _tile_release();
  if (r_amx < r1) Generic<W>::run(a, r_amx, r1);
}

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

void amx_i8ch_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  using Col = I8ColKernel<AmxVnniOps>;
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

MatmulKernel find_matmul_amx(DType t) {
  switch (t) {
    case DType::kQ8_0R16:
      return {amx_q8r16_rows, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ4_0R16:
      return {amx_q4r16_rows<false>, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ4_1R16:
      return {amx_q4r16_rows<true>, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ4_KR16:
      return {amx_q4kr16_rows<false>, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ5_KR16:
      return {amx_q4kr16_rows<true>, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ6_KR16:
      return {amx_q6kr16_rows, ActForm::kQ8Blocks, kR16Rows, true};
    case DType::kQ8_0:
      return {amx_rows<WQ8_0>, ActForm::kQ8Blocks};
    case DType::kQ4_0:
      return {amx_rows<WQ4_0>, ActForm::kQ8Blocks};
    case DType::kQ4_1:
      return {amx_rows<WQ4_1>, ActForm::kQ8Blocks};
    case DType::kQ5_0:
      return {amx_rows<WQ5_0>, ActForm::kQ8Blocks};
    case DType::kQ5_1:
      return {amx_rows<WQ5_1>, ActForm::kQ8Blocks};
    case DType::kQ4_1G128:
      return {amx_rows<WQ4_1G128>, ActForm::kQ8Blocks};
    case DType::kI8Ch:
      return {amx_i8ch_rows, ActForm::kI8Rows};
    default:
      return find_matmul_x86<AmxVnniOps>(t);
  }
}

}  // namespace

namespace amx {
bool usable() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) == 0) return false;
  constexpr unsigned kAmxTile = 1u << 24, kAmxInt8 = 1u << 25;
  if ((edx & kAmxTile) == 0 || (edx & kAmxInt8) == 0) return false;
  // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: fails on kernels without AMX support.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

const IsaKernels& kernels() {
  static constexpr IsaKernels k{Isa::kAmx, quantize_act_row_x86, find_matmul_amx, dot_f32_x86, axpy_f32_x86,
                                attn_block_x86, gelu_x86, swiglu_x86, softmax_x86,
                                rms_norm_x86, layer_norm_x86, f32_to_f16_row_x86, quantize_act_i8_x86};
  return k;
}
}  // namespace amx

}  // namespace llmopt::kernels
#endif
