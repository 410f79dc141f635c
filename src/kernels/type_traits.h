// The dtype-traits table: the one place that maps a tensor type to the kernels that convert its
// rows. Block size and bytes per block come from core's dtype_info(); this adds the functions.
// Later entries (dot products against a quantized activation type) belong here too.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace llmopt::kernels {

using DequantizeRowFn = void (*)(const void* src, float* dst, int64_t n);
using QuantizeRowFn = void (*)(const float* src, void* dst, int64_t n);

struct TypeTraits {
  DType type;
  DequantizeRowFn dequantize_row;  // nullptr: rows of this type cannot be read as f32
  QuantizeRowFn quantize_row;      // nullptr: f32 cannot be written as this type
};

// Traits for t, or nullptr when the kernels layer knows nothing about t.
const TypeTraits* find_type_traits(DType t);

}  // namespace llmopt::kernels
