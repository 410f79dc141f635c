// Reference row conversions between f32 and the stored types: dequantization of F32/F16/BF16 and
// GGML's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K blocks, and quantization to F32/F16/BF16.
// The formulas (including the order of the float operations) are GGML's dequantize_row_*, so the
// results are bit-identical to llama.cpp's reference code.
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {
namespace {

// Blocks are copied out rather than cast in place: rows may sit at any byte offset of a mapped file.
template <class Block>
Block load_block(const uint8_t* p, int64_t i) {
  Block b;
  std::memcpy(&b, p + static_cast<size_t>(i) * sizeof(Block), sizeof(Block));
  return b;
}

// K-quant scale j (0..7) and min j, 6 bits each, packed into 12 bytes:
//   bytes 0..3:  scales 0..3 (low 6 bits), high 2 bits = bits 4..5 of scales 4..7
//   bytes 4..7:  mins 0..3 (low 6 bits),   high 2 bits = bits 4..5 of mins 4..7
//   bytes 8..11: low nibble = bits 0..3 of scales 4..7, high nibble = bits 0..3 of mins 4..7
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

inline uint32_t load_u32_le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = fp16_to_fp32(h);
  }
}

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bf16_to_fp32(h);
  }
}

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK8_0 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const auto b = load_block<BlockQ8_0>(p, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * kQK8_0;
    for (int j = 0; j < kQK8_0; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_0 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    const auto b = load_block<BlockQ4_0>(p, i);
    const float d = fp16_to_fp32(b.d);
    float* y = dst + i * kQK4_0;
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int x0 = (b.qs[j] & 0x0F) - 8;
      const int x1 = (b.qs[j] >> 4) - 8;
      y[j] = static_cast<float>(x0) * d;
      y[j + kQK4_0 / 2] = static_cast<float>(x1) * d;
    }
  }
}

namespace {

// 16 bytes of Q4_1 nibbles (element j low, j + 16 high) -> 32 values q * d + m.
void dequantize_q4_1_nibbles(const uint8_t* qs, float d, float m, float* y) {
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

}  // namespace

void dequantize_row_q4_1_g128(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_1G128 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK4_1G128; ++i) {
    const auto b = load_block<BlockQ4_1G128>(p, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    for (int s = 0; s < 4; ++s) dequantize_q4_1_nibbles(b.qs + 16 * s, d, m, dst + i * kQK4_1G128 + 32 * s);
  }
}

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_1 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const auto b = load_block<BlockQ4_1>(p, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    dequantize_q4_1_nibbles(b.qs, d, m, dst + i * kQK4_1);
  }
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK5_0 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const auto b = load_block<BlockQ5_0>(p, i);
    const float d = fp16_to_fp32(b.d);
    const uint32_t qh = load_u32_le(b.qh);
    float* y = dst + i * kQK5_0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
      const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = ((b.qs[j] & 0x0F) | xh0) - 16;
      const int x1 = ((b.qs[j] >> 4) | xh1) - 16;
      y[j] = static_cast<float>(x0) * d;
      y[j + kQK5_0 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK5_1 == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const auto b = load_block<BlockQ5_1>(p, i);
    const float d = fp16_to_fp32(b.d);
    const float m = fp16_to_fp32(b.m);
    const uint32_t qh = load_u32_le(b.qh);
    float* y = dst + i * kQK5_1;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      const uint8_t xh0 = static_cast<uint8_t>(((qh >> j) << 4) & 0x10);
      const uint8_t xh1 = static_cast<uint8_t>((qh >> (j + 12)) & 0x10);
      const int x0 = (b.qs[j] & 0x0F) | xh0;
      const int x1 = (b.qs[j] >> 4) | xh1;
      y[j] = static_cast<float>(x0) * d + m;
      y[j + kQK5_1 / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

void dequantize_row_q4_k(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto b = load_block<BlockQ4_K>(p, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    const uint8_t* q = b.qs;
    float* y = dst + i * kQK_K;
    // Each 64 elements: 32 low nibbles (sub-block is), then 32 high nibbles (sub-block is + 1).
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(is, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_k(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto b = load_block<BlockQ5_K>(p, i);
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    const uint8_t* ql = b.qs;
    float* y = dst + i * kQK_K;
    // Like Q4_K; the fifth bit of element l of the 64-group g is bit 2g (low half) or 2g+1
    // (high half) of qh[l].
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, ql += 32) {
      uint8_t sc, m;
      scale_min_k4(is, b.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, b.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] & 0xF) + ((b.qh[l] & u1) ? 16 : 0);
        *y++ = d1 * static_cast<float>(q) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0);
        *y++ = d2 * static_cast<float>(q) - m2;
      }
      u1 = static_cast<uint8_t>(u1 << 2);
      u2 = static_cast<uint8_t>(u2 << 2);
    }
  }
}

void dequantize_row_q6_k(const void* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const auto b = load_block<BlockQ6_K>(p, i);
    const float d = fp16_to_fp32(b.d);
    const uint8_t* ql = b.ql;
    const uint8_t* qh = b.qh;
    const int8_t* sc = b.scales;
    float* y = dst + i * kQK_K;
    // Two halves of 128; in each, element l + 32r takes nibble (r / 2) of ql[l + 32 (r % 2)] and
    // bits 2r..2r+1 of qh[l], and scale sc[l / 16 + 2r].
    for (int half = 0; half < kQK_K / 128; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
}

void quantize_row_f16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_fp16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = fp32_to_bf16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

}  // namespace llmopt::kernels::ref
