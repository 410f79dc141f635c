// Type traits and small helpers shared by the block-dot kernels (tiles_blockdot_x86.h,
// blockdot_rows_x86.h). Included only through matmul_x86.h (internal linkage, see there).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/ref/blocks.h"
#include "kernels/x86/tiles_x86.h"
#include "kernels/x86/weight_blocks_x86.h"

namespace llmopt::kernels {
namespace {

// Weight types whose codes can be broadcast straight from memory (Q8_0: 32 signed bytes per block).
template <class W>
concept DirectCodes = requires(const uint8_t* row, int64_t b) {
  { W::codes(row, b) } -> std::same_as<const uint8_t*>;
  { W::scale(row, b) } -> std::same_as<float>;
};


// Q6_K: elements 0..15 and 16..31 of a block have scales of their own (WBlock::d lanes 0..3 and 4..7):
// a block is two integer dot products, each with its scale, in that order.
template <class W>
constexpr bool kTwoScales = requires { W::kTwoScales; };
// Signed codes that can be -128 (the u8 operand must then be |w|, see by_cols).
template <class W>
constexpr bool kMaybeMin128 = !W::kUnsigned && !requires { W::kNoMin128; } && !requires { W::kCodeOffset; };
// K-quants decoded a super-block (8 blocks) at a time: W::super_scales (and W::super_codes).
template <class W>
constexpr bool kSuperBlocks = requires { W::kSuperBytes; };
template <class W>
constexpr bool kHalfScales = requires { W::kHalfScale; };
template <class W>
constexpr bool kHalfMins = requires { W::kHalfMin; };
template <class W>
constexpr bool kMinFromD = requires { W::kMinPerD; };

// The f16 at byte offset off of block b of 4 rows, as 4 floats (one conversion for all four).
inline __m128 gather4_half(const uint8_t* const* rows, int64_t b, int64_t block_bytes, int64_t off) {
  uint16_t h[4];
  for (int r = 0; r < 4; ++r) std::memcpy(&h[r], rows[r] + b * block_bytes + off, 2);
  __m128i v = _mm_cvtsi32_si128(h[0] | (h[1] << 16));
  v = _mm_insert_epi32(v, h[2] | (h[3] << 16), 1);
  return _mm_cvtph_ps(v);
}

inline int hsum_i32x4(__m128i v) {
  v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
  return _mm_cvtsi128_si32(v);
}

// Lanes 0..3 of the result: the sums of lanes 0..3 of a, b, c, d; lanes 4..7: of their lanes 4..7
// (unpacks and adds, one micro-op each, rather than horizontal adds).
inline __m256i sum4_lanes(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  const __m256i cd = _mm256_add_epi32(_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd));
}

// Q6_K's codes are read unsigned (q + 32, 0..63) in the batched tiles, and 32 times the sum of each
// 16-element half of the activations (BlockQ8x8::qsum) taken off the exact integer dot products.
template <class W>
constexpr bool kOffsetCodes = requires { W::kCodeOffset; };
// Unsigned codes of at most c against |x| <= 127: a pair sum is at most 254 c in magnitude, so
// 32767 / (254 c) groups add up in int16 before widening to int32 (c = 15: all 8 groups of a block;
// 31: 4; 63: 2), where the ISA has no fused u8 x s8 -> int32 accumulate (Ops::kPairSums16).
template <class W, class Ops>
constexpr int kSum16Groups = [] {
  if constexpr (requires { Ops::kPairSums16; W::kMaxCode; }) {
    return W::kMaxCode <= 15 ? 8 : W::kMaxCode <= 31 ? 4 : W::kMaxCode <= 63 ? 2 : 0;
  }
  return 0;
}();
template <class W, class Ops>
constexpr bool kSum16 = kSum16Groups<W, Ops> > 0;
// The largest unsigned code of W (0 for types that do not declare one).
template <class W>
constexpr int kCodeMax = [] {
  if constexpr (requires { W::kMaxCode; }) return W::kMaxCode;
  return 0;
}();

// True where the ISA's Ops name a wider decode kernel (Ops::WideRows) that takes W's groups of 16 rows.
template <class W, class Ops>
constexpr bool kWideRows = [] {
  if constexpr (requires { typename Ops::WideRows; }) {
    return Ops::WideRows::template kHandles<W>;
  } else {
    return false;
  }
}();

// v[r] (8 values of row r) -> t[j] (value j of rows 0..3).
inline void transpose4x8(const __m256* v, __m128* t) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                       _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm256_castps256_ps128(u[j]);
    t[j + 4] = _mm256_extractf128_ps(u[j], 1);
  }
}

}  // namespace
}  // namespace llmopt::kernels
