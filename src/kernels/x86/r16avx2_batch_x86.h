// How the AVX2 kernels of the regrouped integer layouts (r16avx2_x86.h: Q8_0 / Q4_0 / Q4_1;
// r16kavx2_x86.h: Q4_K / Q6_K) take a batch: decode and batches up to kR16PassMaxM rows pass over each
// 16-row group with the type's group kernel, 16 activation rows at a time; larger batches copy the
// groups back to the file layout (Q6_K: to one byte per code, r16q6kx_avx2_x86.h), a few at a time, and
// run the tiles on the copy. The copies (restore_r16_groups, restore_k_groups) move the code bytes
// through 8 x 8 transposes of 32-bit words. Internal linkage like matmul_x86.h.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/repack.h"
#include "kernels/x86/r16_common_x86.h"

namespace llmopt::kernels {
namespace {

// Batches of more than kR16PassMaxM rows (with interleaved activations, MatmulArgs::xq8) run the file
// layout's batched tiles (tiles_blockdot_x86.h), which take 8 activation rows per broadcast weight
// group: the groups go back to the file layout, about kR16RestoreBytes at a time, into a per-thread
// buffer (the same values, so the same bits). Up to kR16PassMaxM rows the type's group kernel takes 16
// activation rows per pass over a group (then 8, 4, ...): the group's codes are staged in L1 once per
// pass, and the weights are read as the products consume them. Restoring batches of 8-16 rows instead
// (as this code did first) read the weights in a copy that overlapped no compute: a 16-request
// serve-bench decode step on LLaMA 110M Q8_0 spent 15% of its time there and ran 20-40% below the file
// layout; with 16-row passes it matches the file layout (bench_kernels, one core, 2304 x 768, GMAC/s,
// restored / passes: Q8_0 m = 8 30 / 38, m = 64 37-40 / 37-39, m = 256 37 / 38-41; Q4_0 m = 8 38-42 /
// 55-57, m = 64 57-62 / 53-58, m = 256 60-66 / 51). Decode: the regrouped kernels are 1.2-1.5x the
// file layout's end to end. The rows past the last group are in the file layout already.
constexpr size_t kR16RestoreBytes = size_t{64} << 10;
constexpr int64_t kR16PassMaxM = 64;

// Weight rows [r0, r1) (whole groups) against all activation rows, 16 at a time per group, then 8, 4
// and the 1-3 left (r16_group_rows_by4); then the rows past the last group.
template <class W, class Ops, class Group>
inline void r16_rows_passes_avx2(const MatmulArgs& a, int64_t r0, int64_t r1, const Group& group) {
  const int64_t end = r16_groups_end(a, r1);
  for (int64_t g = r0 / kR16Rows; g * kR16Rows < end; ++g) {
    int64_t i = 0;
    for (; i + 16 <= a.m; i += 16) group.template operator()<16>(g, i);
    if (i + 8 <= a.m) {
      group.template operator()<8>(g, i);
      i += 8;
    }
    r16_group_rows_by4(g, i, a.m, group);
  }
  r16_tail_rows_with<W, Ops>(a, r0, r1);
}

// v[i] (dword j = row j's 4 bytes of chunk i) -> v[j] (dword i = the same), in place: the restores'
// transpose of 8 chunks x 8 rows.
inline void transpose8x8_epi32(__m256i (&v)[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    for (int h = 0; h < 2; ++h) {
      u[4 * i + h] = _mm256_unpacklo_epi64(t[4 * i + h], t[4 * i + 2 + h]);
      u[4 * i + 2 + h] = _mm256_unpackhi_epi64(t[4 * i + h], t[4 * i + 2 + h]);
    }
  }
  // u[0]: rows 0, 4 of chunks 0..3; u[2]: rows 1, 5; u[1]: rows 2, 6; u[3]: rows 3, 7 (u[4..7]: chunks 4..7)
  constexpr int kRow[4] = {0, 2, 1, 3};
  for (int q = 0; q < 4; ++q) {
    v[kRow[q]] = _mm256_permute2x128_si256(u[q], u[4 + q], 0x20);
    v[kRow[q] + 4] = _mm256_permute2x128_si256(u[q], u[4 + q], 0x31);
  }
}

// Groups [g, g + n) of a Q8_0 / Q4_0 / Q4_1 regrouped matrix back to the file layout at out (rows of
// a.w_row_bytes): per block, each row's f16 scale (and Q4_1's min), and its code bytes, which go 8
// chunks (one Q8_0 block, two Q4 blocks) x 8 rows at a time through an 8 x 8 transpose of 32-bit
// words (the same bytes kernels::unpack_r16 writes, which it does too slowly for a product;
// r16_test.cc checks the restored batches against the file layout's products bit for bit). The
// transposes replace one 4-byte copy at a time (the K-quants' copy of that kind ran at 5 GB/s, a third
// of a batch of 8 rows' product; restore_k_groups below).
template <int kChunks, bool kMins>
inline void restore_r16_groups(const MatmulArgs& a, int64_t g, int64_t n, uint8_t* out) {
  static_assert(kChunks == 4 || kChunks == 8);
  const int64_t nb = a.k / 32, stride = a.w_row_bytes;
  constexpr int64_t kHead = kMins ? 4 : 2, kBlock = kHead + 4 * kChunks;  // file block bytes
  constexpr int64_t kPer = 8 / kChunks;                                     // blocks per transpose
  for (int64_t gi = 0; gi < n; ++gi) {
    const uint8_t* base = a.w + static_cast<size_t>(g + gi) * kR16Rows * a.w_row_bytes;
    const uint8_t* scales = base;
    const uint8_t* mins = base + nb * 32;
    const uint8_t* codes = base + nb * 32 * (kMins ? 2 : 1);
    uint8_t* rows = out + static_cast<size_t>(gi) * kR16Rows * a.w_row_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      for (int64_t j = 0; j < kR16Rows; ++j) {
        uint8_t* o = rows + j * stride + b * kBlock;
        std::memcpy(o, scales + 32 * b + 2 * j, 2);
        if constexpr (kMins) std::memcpy(o + 2, mins + 32 * b + 2 * j, 2);
      }
    }
    int64_t b = 0;
    for (; b + kPer <= nb; b += kPer) {
      const uint8_t* c = codes + b * 64 * kChunks;
      for (int h = 0; h < 2; ++h) {  // rows 8 h .. 8 h + 7
        __m256i v[8];
        for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 64 * i + 32 * h));
        transpose8x8_epi32(v);
        for (int j = 0; j < 8; ++j) {
          uint8_t* o = rows + (8 * h + j) * stride + b * kBlock + kHead;
          if constexpr (kChunks == 8) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v[j]);
          } else {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm256_castsi256_si128(v[j]));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o + kBlock), _mm256_extracti128_si256(v[j], 1));
          }
        }
      }
    }
    for (; b < nb; ++b) {  // an odd Q4 block count's last block
      const uint8_t* c = codes + b * 64 * kChunks;
      for (int64_t j = 0; j < kR16Rows; ++j) {
        for (int q = 0; q < kChunks; ++q) std::memcpy(rows + j * stride + b * kBlock + kHead + 4 * q, c + 64 * q + 4 * j, 4);
      }
    }
  }
}

// Restore(a, g, n, out): groups [g, g + n) back to the file layout at out (restore_r16_groups for the
// 32-element types, restore_k_groups for Q4_K), or to another layout RW that the tiles read,
// in rows of restored_row_bytes (Q6_K: WQ6_KX, r16q6kx_avx2_x86.h).
template <class W, class Ops, class RW = W, class Group, class Restore>
inline void r16_rows_avx2(const MatmulArgs& a, int64_t r0, int64_t r1, const Group& group, const Restore& restore,
                          int64_t restored_row_bytes = 0) {
  if (a.xq8 == nullptr || a.m <= kR16PassMaxM) {
    r16_rows_passes_avx2<W, Ops>(a, r0, r1, group);
    return;
  }
  const int64_t end = r16_groups_end(a, r1);
  const size_t group_bytes = kR16Rows * a.w_row_bytes;
  const size_t row_bytes = restored_row_bytes > 0 ? static_cast<size_t>(restored_row_bytes) : a.w_row_bytes;
  const int64_t per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kR16RestoreBytes / group_bytes));
  thread_local std::vector<uint8_t> buf;
  const size_t buf_bytes = static_cast<size_t>(per_chunk) * kR16Rows * row_bytes;
  if (buf.size() < buf_bytes) buf.resize(buf_bytes);
  for (int64_t g = r0 / kR16Rows; g * kR16Rows < end;) {
    const int64_t n = std::min(per_chunk, end / kR16Rows - g);
    restore(a, g, n, buf.data());
    MatmulArgs b = a;
    b.w = buf.data();
    b.w_row_bytes = row_bytes;
    b.y = a.y + g * kR16Rows;  // y's row stride stays n_out
    b.bias = a.bias != nullptr ? a.bias + g * kR16Rows : nullptr;
    BlockDotKernel<RW, Ops>::run(b, 0, n * kR16Rows);
    g += n;
  }
  if (std::max(r0, end) < r1) BlockDotKernel<W, Ops>::run(a, std::max(r0, end), r1);
}

// Groups [g, g + n) of a Q4_K regrouped matrix back to the file layout at out (rows of
// a.w_row_bytes; kernels::unpack_r16's bytes): per super-block of the group, Fields::copy(o, stride,
// sp) writes the 16 rows' file super-blocks (row j at o + j * stride) from the group's super-block at
// sp. The code fields go 8 chunks x 8 rows at a time through an 8 x 8 transpose of 32-bit words (one
// 4-byte copy at a time, with the offsets in an array, ran at 2.6 GB/s, with them fixed at compile
// time at 5 GB/s: a third of a batch of 8 rows' product).

template <int kSrc, int kN, int kStart>  // kN (a multiple of 8) 4-byte chunks at kStart in the group, kSrc in the file
inline void copy_chunks8(uint8_t* o, int64_t stride, const uint8_t* sp) {
  for (int c0 = 0; c0 < kN; c0 += 8) {
    for (int h = 0; h < 2; ++h) {  // rows 8 h .. 8 h + 7
      __m256i v[8];
      for (int i = 0; i < 8; ++i) {
        v[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sp + kStart + 64 * (c0 + i) + 32 * h));
      }
      transpose8x8_epi32(v);
      for (int j = 0; j < 8; ++j) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + (8 * h + j) * stride + kSrc + 4 * c0), v[j]);
      }
    }
  }
}
template <int kSrc, int kN, int kStart>  // a few chunks, one row at a time
inline void copy_chunks(uint8_t* o, int64_t stride, const uint8_t* sp) {
  for (int64_t j = 0; j < kR16Rows; ++j) {
    for (int c = 0; c < kN; ++c) std::memcpy(o + j * stride + kSrc + 4 * c, sp + kStart + 64 * c + 4 * j, 4);
  }
}
template <int kSrc, int kStart>  // an f16 field
inline void copy_half(uint8_t* o, int64_t stride, const uint8_t* sp) {
  for (int64_t j = 0; j < kR16Rows; ++j) std::memcpy(o + j * stride + kSrc, sp + kStart + 2 * j, 2);
}
struct Q4KFields {  // repack.h: d, dmin at 0, 32; scales at 64; qs at 256
  static constexpr int kFileBytes = 144;
  static void copy(uint8_t* o, int64_t stride, const uint8_t* sp) {
    copy_half<0, 0>(o, stride, sp);
    copy_half<2, 32>(o, stride, sp);
    copy_chunks<4, 3, 64>(o, stride, sp);
    copy_chunks8<16, 32, 256>(o, stride, sp);
  }
};
template <class Fields>
inline void restore_k_groups(const MatmulArgs& a, int64_t g, int64_t n, uint8_t* out) {
  const int64_t nsb = a.k / 256, stride = a.w_row_bytes;
  constexpr int64_t kSuper = kR16Rows * Fields::kFileBytes;
  for (int64_t gi = 0; gi < n; ++gi) {
    const uint8_t* base = a.w + static_cast<size_t>(g + gi) * kR16Rows * a.w_row_bytes;
    uint8_t* rows = out + static_cast<size_t>(gi) * kR16Rows * a.w_row_bytes;
    for (int64_t sb = 0; sb < nsb; ++sb) Fields::copy(rows + sb * Fields::kFileBytes, stride, base + sb * kSuper);
  }
}

}  // namespace
}  // namespace llmopt::kernels
