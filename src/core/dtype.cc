// Type table for GGML type ids, name parsing and fp16/bf16 conversions.
#include "core/dtype.h"

#include <cctype>
#include <cmath>
#include <cstring>
#include <string>

#include "core/check.h"

namespace llmopt {
namespace {

constexpr DTypeInfo kTable[] = {
    {DType::kF32, "f32", 1, 4, false},      {DType::kF16, "f16", 1, 2, false},
    {DType::kQ4_0, "q4_0", 32, 18, true},   {DType::kQ4_1, "q4_1", 32, 20, true},
    {DType::kQ5_0, "q5_0", 32, 22, true},   {DType::kQ5_1, "q5_1", 32, 24, true},
    {DType::kQ8_0, "q8_0", 32, 34, true},   {DType::kQ8_1, "q8_1", 32, 36, true},
    {DType::kQ2_K, "q2_K", 256, 84, true},  {DType::kQ3_K, "q3_K", 256, 110, true},
    {DType::kQ4_K, "q4_K", 256, 144, true}, {DType::kQ5_K, "q5_K", 256, 176, true},
    {DType::kQ6_K, "q6_K", 256, 210, true}, {DType::kQ8_K, "q8_K", 256, 292, true},
    {DType::kI8, "i8", 1, 1, false},        {DType::kI16, "i16", 1, 2, false},
    {DType::kI32, "i32", 1, 4, false},      {DType::kI64, "i64", 1, 8, false},
    {DType::kF64, "f64", 1, 8, false},      {DType::kBF16, "bf16", 1, 2, false},
    {DType::kI8Ch, "i8_ch", 1, 1, true},     {DType::kQ4_1G128, "q4_1_g128", 128, 68, true},
    {DType::kQ8_0R16, "q8_0_r16", 32, 34, true, true}, {DType::kQ4_0R16, "q4_0_r16", 32, 18, true, true},
    {DType::kQ4_1R16, "q4_1_r16", 32, 20, true, true}, {DType::kQ4_KR16, "q4_K_r16", 256, 144, true, true},
    {DType::kQ6_KR16, "q6_K_r16", 256, 210, true, true}, {DType::kQ5_KR16, "q5_K_r16", 256, 176, true, true},
    {DType::kF32R16, "f32_r16", 1, 4, false, true},      {DType::kF16R16, "f16_r16", 1, 2, false, true},
    {DType::kQ6_KR16X3, "q6_K_r16x3", 256, 210, true, true},
};

}  // namespace

std::optional<DTypeInfo> dtype_info(uint32_t id) {
  for (const auto& e : kTable) {
    if (static_cast<uint32_t>(e.type) == id && !e.in_memory_only) return e;
  }
  return std::nullopt;
}

const DTypeInfo& dtype_info(DType t) {
  for (const auto& e : kTable) {
    if (e.type == t) return e;
  }
  LLMOPT_CHECK_MSG(false, "unknown DType");
  return kTable[0];
}

std::optional<DType> dtype_from_name(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& e : kTable) {
    std::string n = e.name;
    for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (n == lower && !e.in_memory_only) return e.type;
  }
  return std::nullopt;
}

std::optional<size_t> dtype_row_bytes(DType t, int64_t n) {
  const DTypeInfo& info = dtype_info(t);
  if (n < 0 || n % info.block_size != 0) return std::nullopt;
  const uint64_t blocks = static_cast<uint64_t>(n / info.block_size);
  if (blocks > (UINT64_MAX / info.type_size)) return std::nullopt;
  return static_cast<size_t>(blocks * info.type_size);
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00 | ((abs >> 13) & 0x3ff));  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in half
    // value = abs_float; half subnormal unit is 2^-24; round to nearest even.
    float a;
    std::memcpy(&a, &abs, 4);
    float scaled = a * 16777216.0f;  // * 2^24
    float r = std::nearbyint(scaled);  // default rounding mode is nearest-even
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(r));
  }
  // normal: rebias exponent, round mantissa to 10 bits with nearest-even.
  uint32_t mant = abs + 0xc8000000u;  // exponent -= 112 (<< 23)
  uint32_t round = 0xfff + ((mant >> 13) & 1);
  mant += round;
  return static_cast<uint16_t>(sign | (mant >> 13));
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace llmopt
