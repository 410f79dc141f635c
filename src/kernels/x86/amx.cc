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
// This file holds the file-layout tile kernels and the table; included only here (built with the same
// flags): amx_tiles_x86.h (configuration, tile pipeline), amx_r16_x86.h (the regrouped layouts on the
// tiles), amx_i8_x86.h (W8A8).
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
#include "kernels/x86/amx_i8_x86.h"
#include "kernels/x86/amx_r16_x86.h"
#include "kernels/x86/amx_r16k_x86.h"
#include "kernels/x86/amx_tiles_x86.h"
#include "kernels/x86/attn512_x86.h"
#include "kernels/x86/attn_x86.h"
#include "kernels/x86/lanes512_x86.h"
#include "kernels/x86/matmul_x86.h"
#include "kernels/x86/norm_x86.h"
#include "kernels/x86/r16f512_x86.h"
#include "kernels/x86/r16k_x86.h"
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

// One block of 16 activation rows in the layout of the second tile operand (from two BlockQ8x8, the
// second all zero past the batch).
struct alignas(64) BlockQ8x16 {
  int8_t qs[8][64];
  float d[16];
  float s[16];  // d * (sum of the row's codes): the term of a weight offset m
};


// Where block b of the 16 weight rows' codes is: codes + b * block_step, rows row_stride bytes apart.
struct WeightTiles {
  const int8_t* codes = nullptr;
  int64_t block_step = 0;
  int64_t row_stride = 0;
};

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
    case DType::kF32R16:
      return {r16f_rows<Lanes16, false>, ActForm::kF32, kR16Rows};
    case DType::kF16R16:
      return {r16f_rows<Lanes16, true>, ActForm::kF32, kR16Rows};
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
      return {amx_i8ch_rows<AmxVnniOps>, ActForm::kI8Rows};
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
                                attn_block512_x86, gelu_x86, swiglu_x86, softmax_x86,
                                rms_norm_x86, layer_norm_x86, f32_to_f16_row_x86, quantize_act_i8_x86};
  return k;
}
}  // namespace amx

}  // namespace llmopt::kernels
#endif
