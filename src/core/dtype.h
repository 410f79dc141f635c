// Tensor element types. The numeric values are GGML's type ids so GGUF files map directly.
// Quantized types are stored in blocks: `block_size` elements in `type_size` bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace llmopt {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  // llmopt extension types (not GGML's; ids far above GGML's so llama.cpp refuses them cleanly; see
  // docs/FORMATS.md). kI8Ch: int8 codes in [-127, 127], one byte per element, rows of any length; the
  // per-row f32 scales live in a companion tensor "<name>.scale" and an optional static activation
  // scale in "<name>.act_scale" (the loader attaches both to the weight's TensorView).
  kI8Ch = 1024,
  // kQ4_1G128: Q4_1's formula (x = q * d + m, q in 0..15) with one fp16 (d, m) per 128 elements: a
  // 68-byte block of d, m and 4 x 16 bytes of nibbles, each 16 laid out like a Q4_1 block's. 4.25 bits
  // per weight for 4-bit asymmetric g128 (Q4_1 with the parameters repeated needs 5.0).
  kQ4_1G128 = 1025,
  // kQ8_0R16: not a file type (never read from or written to a file): Q8_0 rows regrouped by 16 in
  // memory at load for the int8 kernels (kernels/repack.h). Same bytes per row as Q8_0.
  // kF32R16 / kF16R16 below: the same for F32 / F16 (the float kernels).
  kQ8_0R16 = 1026,
  kQ4_0R16 = 1027,  // the same for Q4_0
  kQ4_1R16 = 1028,  // and Q4_1
  kQ4_KR16 = 1029,  // and Q4_K (256-element super-blocks)
  kQ6_KR16 = 1030,  // and Q6_K
  kQ5_KR16 = 1031,  // and Q5_K
  kF32R16 = 1032,   // and F32 (element k of 16 rows side by side)
  kF16R16 = 1033,   // and F16
  // kQ6_KR16X3: kQ6_KR16 with its codes in three byte planes (6 bits of one code and 2 of a fourth per
  // byte; kernels/repack.h), for ISAs whose products decode that faster (AVX2). Same bytes per row.
  kQ6_KR16X3 = 1034,
};

struct DTypeInfo {
  DType type;
  const char* name;     // llama.cpp spelling, lower case: "f32", "q8_0", "q4_K"
  int64_t block_size;   // elements per block (1 for plain types)
  size_t type_size;     // bytes per block
  bool quantized;
  bool in_memory_only = false;  // no file carries this type (looked up by neither id nor name)
};

// Info for a type id read from a file; nullopt for ids llmopt does not know.
std::optional<DTypeInfo> dtype_info(uint32_t id);
const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) { return dtype_info(t).name; }
// Parses "f32", "F16", "bf16", "q8_0", "Q4_K" ...; nullopt if unknown.
std::optional<DType> dtype_from_name(std::string_view name);
// Bytes for n elements (n must be a multiple of the block size; returns nullopt otherwise or on overflow).
std::optional<size_t> dtype_row_bytes(DType t, int64_t n);

// IEEE half and bfloat16 conversions (round to nearest even; NaN preserved).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t fp32_to_bf16(float f);

}  // namespace llmopt
