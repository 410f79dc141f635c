// Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K, F32 and F16 weights regrouped by 16 rows at load (DType::kQ8_0R16, kQ4_0R16,
// kQ4_1R16, kQ4_KR16, kQ5_KR16, kQ6_KR16, kF32R16, kF16R16), for the int8 tile (AMX) and VNNI kernels and the
// float kernels. Not a file format: the
// loader rewrites such a tensor in place when the selected kernels have a fast product for the layout
// (LoadOptions::repack), and write_gguf_model turns it back into the file type's bytes, exactly.
//
// Rows come in groups of 16; the last rows % 16 rows of a tensor stay in the file layout after the
// groups (the kernels give them to the type's file-layout decode kernel). Group g holds the bytes of
// its 16 rows, nb blocks each, 4 payload bytes of each of the 16 rows side by side per 64 bytes:
// the layout of the second operand of an int8 tile product, and what one VNNI product against a
// broadcast group of 4 activation codes reads (the 16 rows' sums in the 16 lanes of one register).
//
// Q8_0 / Q4_0 / Q4_1 (blocks of 32: H f16 values (d; Q4_1: d, m) and P payload bytes; Q8_0: P = 32
// codes; Q4_0 / Q4_1: P = 16 bytes, element i in the low nibble of byte i and element i + 16 in its
// high nibble), nb = k / 32:
//   scales:  [nb][16] f16           the d of block b of row j at 2 * (16 b + j)
//   mins:    [nb][16] f16 (Q4_1)    its m at nb * 32 + 2 * (16 b + j)
//   payload: [nb][P / 4][16][4]     payload byte i of block b of row j at nb * 32 H + 16 P b + 64 (i / 4) + 4 j + i % 4
// so one block of the 16 rows is 32 bytes of scales and 16 P contiguous bytes. For Q4_0 / Q4_1 the low
// nibbles of 64 bytes are elements 4q .. 4q + 3 (q = i / 4) of the 16 rows and the high nibbles
// elements 16 + 4q .. 16 + 4q + 3.
//
// Q4_K, Q5_K and Q6_K (super-blocks of 256 elements, nb = k / 256): super-block b of the 16 rows is 16 S
// contiguous bytes at 16 S b (S: the super-block's size, 144 / 176 / 210), holding, for byte i of a
// field of the file's super-block of row j:
//   Q4_K: d at 2 j, dmin at 32 + 2 j, scales[i] at 64 + 64 (i / 4) + 4 j + i % 4,
//         qs[i] at 256 + 64 (i / 4) + 4 j + i % 4 (sub-blocks 2p and 2p + 1: low and high nibbles of 8 x 64 bytes)
//   Q5_K: as Q4_K, with qh[i] at 256 + 64 (i / 4) + 4 j + i % 4 and qs[i] at 768 + 64 (i / 4) + 4 j + i % 4
//   Q6_K: scales[i] at 64 (i / 4) + 4 j + i % 4, ql[i] at 256 + 64 (i / 4) + 4 j + i % 4,
//         qh[i] at 2304 + 64 (i / 4) + 4 j + i % 4, d at 3328 + 2 j
// so each field's 4-byte chunks of the 16 rows are one 64-byte vector (the 16 rows' scale words, one
// row per 32-bit lane: the scale decoding runs on 16 rows at once).
//
// Q6_K in three planes (kQ6_KR16X3, chosen instead of kQ6_KR16 where the selected ISA has a kernel for
// it: AVX2): the kQ6_KR16 super-block with its scales and codes rearranged (d stays at 3328 + 2 j).
//   scales[k] of row j at 16 k + j     (8 rows' scale k: 8 bytes, one sign extension for 8 lanes)
// and, with u_c (0..63, the stored code q + 32) element 4 q + e of block 4 h + c of the super-block
// (h < 2, q < 8, c < 4, e < 4) of row j, byte 4 j + e of the 64 bytes at 256 + 64 (24 h + 3 q + p),
// p < 3, holds
//   u_p | ((u_3 >> 2 p) & 3) << 6
// so a kernel gets u_0, u_1, u_2 with one mask each and u_3 from the three top bit pairs (11 vector
// operations for 4 vectors of codes, against 17 from ql and qh).
//
// F32 / F16 (4 / 2 bytes per element): element c of row j at 16 e c + e j (e: the element size), so
// element c of the 16 rows is one 64- (32-) byte vector: the float kernels broadcast x[c] and add
// x[c] * w[c] into the 16 rows' sums in one fma (x86/r16f_x86.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/tensor.h"

namespace llmopt::kernels {

constexpr int64_t kR16Rows = 16;

// The regrouped type of a file type (kQ8_0 -> kQ8_0R16, ..., kQ6_K -> kQ6_KR16), or t
// itself when it has none.
DType r16_type_of(DType t);
// The file type of a regrouped type (kQ8_0R16 -> kQ8_0, ...), or t itself.
DType plain_type_of(DType t);
inline bool is_r16(DType t) { return plain_type_of(t) != t; }
// True if w is a 2-D Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 tensor of at least 16 rows.
bool can_repack_r16(const TensorView& w);
// The regrouped type the selected ISA computes fastest for file type t: kQ6_KR16X3 for Q6_K where the
// ISA has a kernel for it, else r16_type_of(t).
DType preferred_r16_type(DType t);
// True if the selected ISA computes products against preferred_r16_type(t) with a fast kernel (the layout pays).
bool prefers_r16(DType t);
// Rewrites `rows` rows of type t (Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16) of k elements at data into the
// regrouped layout, in place.
void repack_r16(DType t, uint8_t* data, int64_t rows, int64_t k);
// The same into the regrouped type r (r16_type_of(plain_type_of(r)) or kQ6_KR16X3).
void repack_r16_as(DType r, uint8_t* data, int64_t rows, int64_t k);
// The inverse: regrouped bytes of type r (kQ8_0R16 ... kF16R16, kQ6_KR16X3) at src -> plain rows at dst (the same
// size; src != dst).
void unpack_r16(DType r, const uint8_t* src, int64_t rows, int64_t k, uint8_t* dst);
// Row r of a regrouped tensor (type rt) of `rows` rows and k columns, as f32 (the values dequantize_row gives the plain row).
void dequantize_r16_row(DType rt, const uint8_t* data, int64_t rows, int64_t k, int64_t r, float* dst);

}  // namespace llmopt::kernels
