// Flash-style attention step (kernels::attn_block), 256-bit FMA with F16C loads for f16 caches.
// Included only by the x86 ISA translation units; internal linkage like matmul_x86.h.
//   Scores: three query rows (a GQA group of three heads, or rows of three tokens of a prefill tile)
//   x four keys per pass, so each key vector is loaded (and converted from f16) once for several
//   queries; the last one or two rows go as a pair or alone through the same arithmetic. Every key of the chunk goes through
//   a group of four (a partial group repeats its last key), and each (query, key) sum is reduced by the
//   same hadd tree, so a score does not depend on which other rows or keys shared the pass (batch
//   invariance).
//   Then per query row: the max, exp256 of the shifted scores, the running sum; and the output rows
//   that see the same keys (one token's query heads, or tokens of a prefill tile past the chunk), up to
//   three at a time and 16 floats at a time, kept in registers while the visible value rows (each
//   converted once for them) are added in.
// Head sizes that are not a multiple of 8 take scalar-loop fallbacks (dot_f32_x86 / axpy_f32_x86 on
// converted rows, at most 512 elements). The score and value passes are in attn_parts_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/x86/act_x86.h"
#include "kernels/x86/attn_parts_x86.h"
#include "kernels/x86/vec_x86.h"

namespace llmopt::kernels {
namespace {

template <bool F16>
void attn_block_x86_t(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, int64_t stride,
                      int32_t n) {
  const bool vec = hd % 8 == 0;
  LLMOPT_CHECK_MSG(vec || hd <= 512, "attention: head size must be a multiple of 8 or at most 512");
  const int32_t rows = a.n_tok * a.group;
  alignas(32) float s[kAttnMaxRows][kAttnChunk + 4];  // + 4: the last group of four may run past n
  alignas(32) float p[kAttnMaxRows][kAttnChunk];
  float cr[kAttnMaxRows];
  float tmp[512];
  auto q_row = [&](int32_t r) { return a.q + (r / a.group) * a.q_stride + (r % a.group) * hd; };
  auto o_row = [&](int32_t r) { return a.o + (r / a.group) * a.o_stride + (r % a.group) * hd; };
  auto vis_of = [&](int32_t r) { return std::min(n, a.n_vis[r / a.group]); };
  // Scores of every row, over the keys its token may see (rounded up to groups of four; a row whose
  // token sees fewer keys than its partners' gets scores it then masks). Rows go three at a time (a
  // GQA triple is one token's; otherwise the three may span tokens of a prefill tile), the last one or
  // two in a pair or alone.
  int32_t r3 = 0;
  if (vec) {
    for (; r3 + 3 <= rows; r3 += 3) {
      const int32_t nk = std::max({vis_of(r3), vis_of(r3 + 1), vis_of(r3 + 2)});
      for (int32_t j = 0; j < nk; j += 4) {
        scores_3x4<F16>(q_row(r3), q_row(r3 + 1), q_row(r3 + 2), k, stride, j, n, hd, scale, s[r3], s[r3 + 1],
                        s[r3 + 2]);
      }
    }
  }
  for (int32_t r = r3; r < rows; r += 2) {
    const int32_t rb = std::min(r + 1, rows - 1);
    const int32_t nk = std::max(vis_of(r), vis_of(rb));
    if (vec && rb == r) {
      for (int32_t j = 0; j < nk; j += 4) scores_1x4<F16>(q_row(r), k, stride, j, n, hd, scale, s[r]);
    } else if (vec) {
      for (int32_t j = 0; j < nk; j += 4) {
        scores_2x4<F16>(q_row(r), q_row(rb), k, stride, j, n, hd, scale, s[r], s[rb]);
      }
    } else {
      for (int32_t x : {r, rb}) {
        for (int32_t j = 0; j < vis_of(x); ++j) {
          s[x][j] = dot_f32_x86(q_row(x), kv_row_f32<F16>(k, stride, j, hd, tmp), hd) * scale;
        }
      }
    }
  }
  // Per row: the max, the probabilities p of the visible keys, the running sum.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int32_t r = 0; r < rows; ++r) {
    const int32_t vis = vis_of(r);
    cr[r] = 1.0f;
    if (vis <= 0) continue;
    float* sr = s[r];
    // Keys past vis: -inf scores (no effect on the max) and p = 0.
    for (int32_t j = vis; j < kAttnChunk; ++j) sr[j] = -INFINITY;
    const __m256 s0 = _mm256_loadu_ps(sr), s1 = _mm256_loadu_ps(sr + 8);
    const __m256 mv = _mm256_max_ps(s0, s1);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mv), _mm256_extractf128_ps(mv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float mx = std::max(a.m[r], _mm_cvtss_f32(m4));
    // exp(-inf) = 0 for the first chunk; no rescaling while the max stays.
    const float c = mx == a.m[r] ? 1.0f : std::exp(a.m[r] - mx);
    const __m256 vm = _mm256_set1_ps(mx);
    const __m256 live0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(vis), lane));
    const __m256 live1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(vis - 8), lane));
    const __m256 p0 = _mm256_and_ps(exp256(_mm256_sub_ps(s0, vm)), live0);
    const __m256 p1 = _mm256_and_ps(exp256(_mm256_sub_ps(s1, vm)), live1);
    _mm256_store_ps(p[r], p0);
    _mm256_store_ps(p[r] + 8, p1);
    a.l[r] = a.l[r] * c + hsum(_mm256_add_ps(p0, p1));
    a.m[r] = mx;
    cr[r] = c;
  }
  // Output: o = o * c + sum_j p_j v_j over the visible keys, up to three rows that see the same keys
  // at a time (a token's query heads, or rows of consecutive tokens of a prefill tile that see the
  // whole chunk), so each value vector is converted once for them.
  for (int32_t r = 0; r < rows;) {
    const int32_t vis = vis_of(r);
    if (vis <= 0) {
      ++r;
      continue;
    }
    if (!vec) {
      float* oi = o_row(r);
      for (int64_t d = 0; d < hd; ++d) oi[d] *= cr[r];
      for (int32_t j = 0; j < vis; ++j) axpy_f32_x86(p[r][j], kv_row_f32<F16>(v, stride, j, hd, tmp), oi, hd);
      ++r;
      continue;
    }
    int nr = 1;
    while (nr < 3 && r + nr < rows && vis_of(r + nr) == vis) ++nr;
    float* o[3] = {o_row(r), nr > 1 ? o_row(r + 1) : nullptr, nr > 2 ? o_row(r + 2) : nullptr};
    const float* pr[3] = {p[r], nr > 1 ? p[r + 1] : nullptr, nr > 2 ? p[r + 2] : nullptr};
    accumulate_values<F16>(o, pr, cr + r, nr, v, stride, hd, vis);
    r += nr;
  }
}

void attn_block_x86(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                    int64_t stride, int32_t n) {
  if (kv_f16) {
    attn_block_x86_t<true>(a, hd, scale, k, v, stride, n);
  } else {
    attn_block_x86_t<false>(a, hd, scale, k, v, stride, n);
  }
}

}  // namespace
}  // namespace llmopt::kernels
