// Q8_0 weights regrouped by 16 rows at load (DType::kQ8_0R16), for the int8 tile (AMX) and VNNI
// kernels. Not a file format: the loader rewrites a Q8_0 tensor in place when the selected kernels
// have a fast product for it (LoadOptions::repack), and write_gguf_model turns it back into Q8_0
// bytes, exactly.
//
// Rows come in groups of 16 (the tensor's row count must be a multiple of 16). Group g takes the
// bytes of its 16 Q8_0 rows (16 x nb blocks of 34 bytes, nb = k / 32) and holds, in order:
//   scales: [nb][16] f16        the d of block b of row j at 2 * (16 b + j)
//   codes:  [nb][8][16][4] int8 code 4 q + e of block b of row j at nb * 32 + 512 b + 64 q + 4 j + e
// so one block of the 16 rows is 32 bytes of scales and 512 contiguous bytes of codes laid out as
// the second operand of an int8 tile product (16 columns x 4 consecutive codes per 32-bit group),
// which is also what a VNNI product against one broadcast group of 4 activation codes reads: the
// 16 rows' sums in the 16 lanes of one register.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace llmopt::kernels {

constexpr int64_t kR16Rows = 16;

// True if w is a 2-D Q8_0 tensor whose rows can be grouped by 16.
bool can_repack_q8_0_r16(const TensorView& w);
// True if the selected ISA computes products against kQ8_0R16 with a fast kernel (the layout pays).
bool prefers_q8_0_r16();
// Rewrites `rows` Q8_0 rows of k elements at data (rows % 16 == 0) into the kQ8_0R16 layout, in place.
void repack_q8_0_r16(uint8_t* data, int64_t rows, int64_t k);
// The inverse: kQ8_0R16 bytes at src -> plain Q8_0 rows at dst (the same size; src != dst).
void unpack_q8_0_r16(const uint8_t* src, int64_t rows, int64_t k, uint8_t* dst);
// Row r of a kQ8_0R16 tensor of k columns, as f32 (the same values as dequantize_row of the Q8_0 row).
void dequantize_q8_0_r16_row(const uint8_t* data, int64_t k, int64_t r, float* dst);

}  // namespace llmopt::kernels
