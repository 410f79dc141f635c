// What the kernels of the regrouped quantized layouts (DType::kQ8_0R16, kQ4_0R16, kQ4_1R16 and the
// K-quants; kernels/repack.h) share whatever the vector width: the bytes of one block of a 16-row
// group, the decode prefetch of the weight stream, the rows past the last whole group (the file
// layout's kernel of the type) and the loop over groups, 4 activation rows at a time. Included by
// r16_x86.h (AVX-512 + VNNI) and r16avx2_x86.h (AVX2); internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/matmul_x86.h"

namespace llmopt::kernels {
namespace {

constexpr int64_t kR16GroupBlockBytes = kR16Rows * 34;  // bytes of one block of a 16-row Q8_0 group
constexpr int64_t kR16Q4GroupBlockBytes = kR16Rows * 18;  // the same for Q4_0
constexpr int64_t kR16Q41GroupBlockBytes = kR16Rows * 20;  // and Q4_1

// Where the fields of Q4_0 / Q4_1 group g lie: per block, the 16 rows' f16 scales (32 bytes), for Q4_1
// their f16 mins (32 bytes), and the 256 nibble bytes.
struct R16Q4Group {
  const uint8_t* scales;
  const uint8_t* mins;  // Q4_1 only
  const uint8_t* nib;
};
template <bool kQ41>
inline R16Q4Group r16_q4_group(const MatmulArgs& a, int64_t g) {
  const int64_t nb = a.k / 32;
  const uint8_t* base = a.w + static_cast<size_t>(g * nb) * (kQ41 ? kR16Q41GroupBlockBytes : kR16Q4GroupBlockBytes);
  return {base, base + nb * 32, base + nb * 32 * (kQ41 ? 2 : 1)};
}

// The decode prefetch of the weight stream: the `bytes` at p, far ahead into L2 and near ahead into L1.
inline void prefetch_block(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + off + kPrefetchBytes), _MM_HINT_T1);
    _mm_prefetch(reinterpret_cast<const char*>(p + off + kPrefetchNear), _MM_HINT_T0);
  }
}

// A tensor whose row count is not a multiple of 16 keeps its last n_out % 16 rows in the file layout
// after the groups (repack.h). Rows below r16_groups_end(a, r1) come in whole groups;
// r16_tail_rows_with computes the rest of [r0, r1) with the file-layout decode kernel of the type (W:
// WQ8_0, WQ4_K, ...; Ops: the ISA's integer dot product; the same operations as every kernel of the
// type: bit-identical, for any batch).
inline int64_t r16_groups_end(const MatmulArgs& a, int64_t r1) {
  return std::min(r1, a.n_out / kR16Rows * kR16Rows);
}
template <class W, class Ops>
inline void r16_tail_rows_with(const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = std::max(r0, r16_groups_end(a, r1)); r < r1; ++r) {
    for (int64_t i = 0; i < a.m; ++i) BlockDotRows<W, Ops>::template by_rows<1>(a, r, i);
  }
}

// Activation rows [i, m) against group g, 4 at a time, then the 1-3 left: group.template
// operator()<R>(g, i) takes rows [i, i + R) against group g.
template <class Group>
inline void r16_group_rows_by4(int64_t g, int64_t i, int64_t m, const Group& group) {
  for (; i + 4 <= m; i += 4) group.template operator()<4>(g, i);
  switch (m - i) {
    case 3:
      group.template operator()<3>(g, i);
      break;
    case 2:
      group.template operator()<2>(g, i);
      break;
    case 1:
      group.template operator()<1>(g, i);
      break;
    default:
      break;
  }
}

// Weight rows [r0, r1) (whole groups of 16: MatmulKernel::row_align) against all activation rows,
// up to 4 at a time (each group's bytes are read once per 4 rows); then the rows past the last group.
template <class W, class Ops, class Group>
inline void r16_rows_by4_with(const MatmulArgs& a, int64_t r0, int64_t r1, const Group& group) {
  const int64_t end = r16_groups_end(a, r1);
  for (int64_t g = r0 / kR16Rows; g * kR16Rows < end; ++g) r16_group_rows_by4(g, 0, a.m, group);
  r16_tail_rows_with<W, Ops>(a, r0, r1);
}

}  // namespace
}  // namespace llmopt::kernels
