// Matmul row kernels shared by the x86 translation units, written with 256-bit AVX2/FMA/F16C
// intrinsics. Included only by x86/avx2.cc and x86/avx512.cc, each compiled with its own ISA flags;
// everything here has internal linkage (anonymous namespace), so the copies never merge at link
// time. The ISA-specific piece is the Ops policy each file passes in:
//   Ops::dot_u8s8(u, s) -> 8 int32 lanes, each the sum of 4 products u8 * s8 of that lane.
// A tile is R weight rows x M activation rows: each weight vector is loaded once and used for all
// M activation rows, so batched decode streams the weights from memory once. Every output element
// is computed by the same sequence of operations whatever the tile, so results do not depend on how
// rows are split over threads.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/tiles_blockdot_x86.h"
#include "kernels/x86/tiles_float_x86.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"
#include "kernels/x86/weight_kquants_x86.h"

namespace llmopt::kernels {
namespace {

// ---- row loops --------------------------------------------------------------------------------------
template <class K, int R>
void run_row_group(const MatmulArgs& a, int64_t r) {
  int64_t i = 0;
  for (; i + K::kTileM <= a.m; i += K::kTileM) K::template tile<R, K::kTileM>(a, r, i);
  for (; i + 4 <= a.m; i += 4) K::template tile<R, 4>(a, r, i);
  switch (a.m - i) {
    case 3:
      K::template tile<R, 3>(a, r, i);
      break;
    case 2:
      K::template tile<R, 2>(a, r, i);
      break;
    case 1:
      K::template tile<R, 1>(a, r, i);
      break;
    default:
      break;
  }
}

// Weight rows [r, r + 4) against activation rows [i, m), m - i < K::kTileM: the leftover
// activation rows get a tile shape that still keeps 6-8 accumulators busy (small batches, the
// k + 1 rows of a speculative verify pass).
template <class K>
void run_tail4(const MatmulArgs& a, int64_t r, int64_t i) {
  switch (a.m - i) {
    case 0:
      break;
    case 1:
      K::template tile<4, 1>(a, r, i);
      break;
    case 2:
      K::template tile<4, 2>(a, r, i);
      break;
    case 3:
      K::template tile<2, 3>(a, r, i);
      K::template tile<2, 3>(a, r + 2, i);
      break;
    case 4:
      K::template tile<2, 4>(a, r, i);
      K::template tile<2, 4>(a, r + 2, i);
      break;
    default:
      run_row_group<K, 1>(a, r);  // unreachable for kTileM <= 4
      break;
    case 5:
    case 6:
    case 7:
      for (int64_t rr = 0; rr < 4; ++rr) {
        switch (a.m - i) {
          case 5:
            K::template tile<1, 5>(a, r + rr, i);
            break;
          case 6:
            K::template tile<1, 6>(a, r + rr, i);
            break;
          default:
            K::template tile<1, 7>(a, r + rr, i);
            break;
        }
      }
      break;
  }
}

// NOTE: for one activation row (decode) 4 weight rows per tile give 4 independent accumulators;
// with several activation rows each kernel's kTileR weight rows x kTileM activation rows keep all
// accumulators in registers, and the leftover rows use run_tail4's shapes. A weight row's blocks
// stay in L1 between the activation-row groups. Every output element is computed by the same
// sequence of operations whatever the tile, so batch composition never changes a result.
template <class K>
void run_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  int64_t r = r0;
  if (a.m == 1) {
    if constexpr (K::kDecodeR == 8) {
      for (; r + 8 <= r1; r += 8) K::template tile<8, 1>(a, r, 0);
    }
    for (; r + 4 <= r1; r += 4) K::template tile<4, 1>(a, r, 0);
  } else {
    static_assert(4 % K::kTileR == 0, "weight-row tiles must divide 4");
    for (; r + 4 <= r1; r += 4) {
      int64_t i = 0;
      for (; i + K::kTileM <= a.m; i += K::kTileM) {
        for (int64_t rr = 0; rr < 4; rr += K::kTileR) K::template tile<K::kTileR, K::kTileM>(a, r + rr, i);
      }
      run_tail4<K>(a, r, i);
    }
  }
  for (; r < r1; ++r) run_row_group<K, 1>(a, r);
}

// Float weights, batches: the activation rows go in passes of about kFloatPassBytes (a multiple of
// the tile height), so that a pass stays in L2 while this thread's weight rows go by, instead of every
// group of 4 weight rows reading all m activation rows from L3 (or memory).
constexpr int64_t kFloatPassBytes = int64_t{96} << 10;
template <class K>
void run_rows_passes(const MatmulArgs& a, int64_t r0, int64_t r1) {
  const int64_t rows_per_pass = std::max<int64_t>(
      K::kTileM, kFloatPassBytes / (a.k * static_cast<int64_t>(sizeof(float))) / K::kTileM * K::kTileM);
  if (a.m <= rows_per_pass) {
    run_rows<K>(a, r0, r1);
    return;
  }
  for (int64_t i0 = 0; i0 < a.m; i0 += rows_per_pass) {
    MatmulArgs p = a;
    p.m = std::min(rows_per_pass, a.m - i0);
    p.x = a.x + i0 * a.k;
    p.y = a.y + i0 * a.n_out;
    run_rows<K>(p, r0, r1);
  }
}

// Float weights: batches whose groups of 4 weight rows exceed 48 KiB (rows over 12 KiB: f32 rows of
// 4096) take the k-blocked loop; the rest the passes above. (Measured: GPT-2 124M's 3072-long rows,
// 24 and 48 KiB per 4 rows in f16 and f32, gained nothing from k-blocks end to end, f16 pp512 lost
// 5-8%.)
template <class W, class L>
void float_rows(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.m >= kFloatKBlockedMinM && a.k * W::kBytes > 3 * kFloatKcBytes) {
    float_rows_kblocked<W, L>(a, r0, r1);
  } else {
    run_rows_passes<FloatKernel<W, L>>(a, r0, r1);
  }
}

// The float tiles' lanes: Ops::FloatLanes where the ISA names them (AVX-512: 16), else 8.
template <class Ops>
struct FloatLanesOf {
  using type = Lanes8;
};
template <class Ops>
  requires requires { typename Ops::FloatLanes; }
struct FloatLanesOf<Ops> {
  using type = typename Ops::FloatLanes;
};

template <class Ops>
void I8ColKernel<Ops>::run(const MatmulArgs& a, int64_t r0, int64_t r1) {
  if (a.xi8x8 == nullptr) {
    run_rows<I8Kernel<Ops>>(a, r0, r1);
    return;
  }
  column_passes<kColR>(r0, r1, (a.m + 7) / 8, a.k_pad * 8,
                       [&]<int R>(int64_t r, int64_t g) { by_cols<R>(a, r, g); });
}

template <class Ops>
MatmulKernel find_matmul_x86(DType t) {
  using L = typename FloatLanesOf<Ops>::type;
  switch (t) {
    case DType::kF32:
      return {float_rows<WF32, L>, ActForm::kF32};
    case DType::kF16:
      return {float_rows<WF16, L>, ActForm::kF32};
    case DType::kBF16:
      return {float_rows<WBF16, L>, ActForm::kF32};
    case DType::kQ8_0:
      return {BlockDotKernel<WQ8_0, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ4_0:
      return {BlockDotKernel<WQ4_0, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ4_1:
      return {BlockDotKernel<WQ4_1, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ5_0:
      return {BlockDotKernel<WQ5_0, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ5_1:
      return {BlockDotKernel<WQ5_1, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ4_K:
      return {BlockDotKernel<WQ4_K, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ5_K:
      return {BlockDotKernel<WQ5_K, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ6_K:
      return {BlockDotKernel<WQ6_K, Ops>::run, ActForm::kQ8Blocks};
    case DType::kQ4_1G128:
      return {BlockDotKernel<WQ4_1G128, Ops>::run, ActForm::kQ8Blocks};
    case DType::kI8Ch:
      return {I8ColKernel<Ops>::run, ActForm::kI8Rows};
    default:
      return {};
  }
}

}  // namespace
}  // namespace llmopt::kernels
