// Quantized block layouts, byte for byte the same as GGML's (ggml-common.h), so rows read from a
// GGUF file can be reinterpreted in place. Scales are IEEE half floats stored as raw uint16 bits.
// Every struct is POD with its size pinned by a static_assert.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmopt::kernels {

using Half = uint16_t;  // raw IEEE binary16 bits

constexpr int kQK4_0 = 32;
constexpr int kQK4_1 = 32;
constexpr int kQK5_0 = 32;
constexpr int kQK5_1 = 32;
constexpr int kQK8_0 = 32;
constexpr int kQK_K = 256;       // super-block size of the K-quants
constexpr int kKScaleSize = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

// x[i] = (q[i] - 8) * d
struct BlockQ4_0 {
  Half d;
  uint8_t qs[kQK4_0 / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 2 + kQK4_0 / 2, "BlockQ4_0 layout");

// x[i] = q[i] * d + m
struct BlockQ4_1 {
  Half d;
  Half m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(BlockQ4_1) == 2 * 2 + kQK4_1 / 2, "BlockQ4_1 layout");

// x[i] = (q[i] - 16) * d, q = low nibble | (bit i of qh) << 4
struct BlockQ5_0 {
  Half d;
  uint8_t qh[4];  // 32 high bits, little-endian uint32
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(BlockQ5_0) == 2 + 4 + kQK5_0 / 2, "BlockQ5_0 layout");

// x[i] = q[i] * d + m
struct BlockQ5_1 {
  Half d;
  Half m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(BlockQ5_1) == 2 * 2 + 4 + kQK5_1 / 2, "BlockQ5_1 layout");

// x[i] = qs[i] * d
struct BlockQ8_0 {
  Half d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 2 + kQK8_0, "BlockQ8_0 layout");

// 8 sub-blocks of 32: x = d * sc[j] * q - dmin * m[j], with 6-bit sc/m packed in `scales`.
struct BlockQ4_K {
  Half d;
  Half dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 2 * 2 + kKScaleSize + kQK_K / 2, "BlockQ4_K layout");

// Like Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  Half d;
  Half dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 2 * 2 + kKScaleSize + kQK_K / 8 + kQK_K / 2, "BlockQ5_K layout");

// 16 sub-blocks of 16: x = d * scales[j] * (q - 32), q = 4 low bits in ql | 2 high bits in qh.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  Half d;
};
static_assert(sizeof(BlockQ6_K) == kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2, "BlockQ6_K layout");

// llmopt extension (DType::kQ4_1G128): x = q * d + m for 128 elements; qs[16 s + j] holds element
// 32 s + j in its low nibble and 32 s + j + 16 in its high nibble (s = 0..3: four Q4_1 nibble layouts).
constexpr int kQK4_1G128 = 128;
struct BlockQ4_1G128 {
  Half d;
  Half m;
  uint8_t qs[kQK4_1G128 / 2];
};
static_assert(sizeof(BlockQ4_1G128) == 2 * 2 + kQK4_1G128 / 2, "BlockQ4_1G128 layout");

// Not a file format: f32 activations quantized on the fly for the integer dot products of the fast
// matmuls (like GGML's block_q8_1, with f32 fields). x[i] = qs[i] * d; s = d * sum(qs) serves the
// types with an offset (Q4_1). Made by ref::quantize_row_q8_act (and bit-identical ISA versions).
// 32-byte aligned so that the SIMD loads of qs never straddle a cache line.
struct alignas(32) BlockQ8Act {
  int8_t qs[kQK8_0];
  float d;
  float s;
};
static_assert(sizeof(BlockQ8Act) == 64 && offsetof(BlockQ8Act, qs) == 0, "BlockQ8Act layout");

// Not a file format: block b of 8 activation rows (BlockQ8Act) interleaved for the batched kernels,
// which broadcast 4 weight codes to 8 lanes: qs[g][4 c + j] is element 4 g + j of row c; d[c], s[c]
// and qsum[.][c] are row c's. Rows past the batch are zero.
struct alignas(32) BlockQ8x8 {
  float d[8];
  float s[8];
  int8_t qs[8][32];
  int32_t qsum[2][8];  // qsum[h][c]: sum of row c's qs over elements 16 h .. 16 h + 15
};
static_assert(sizeof(BlockQ8x8) == 384, "BlockQ8x8 layout");

}  // namespace llmopt::kernels
