// The dtype-traits table (see type_traits.h). Types absent here are not supported by the kernels.
#include "kernels/type_traits.h"

#include "kernels/ref/ref.h"

namespace llmopt::kernels {
namespace {

constexpr TypeTraits kTraits[] = {
    {DType::kF32, ref::dequantize_row_f32, ref::quantize_row_f32},
    {DType::kF16, ref::dequantize_row_f16, ref::quantize_row_f16},
    {DType::kBF16, ref::dequantize_row_bf16, ref::quantize_row_bf16},
    {DType::kQ8_0, ref::dequantize_row_q8_0, ref::quantize_row_q8_0},
    {DType::kQ4_0, ref::dequantize_row_q4_0, ref::quantize_row_q4_0},
    {DType::kQ4_1, ref::dequantize_row_q4_1, ref::quantize_row_q4_1},
    {DType::kQ5_0, ref::dequantize_row_q5_0, ref::quantize_row_q5_0},
    {DType::kQ5_1, ref::dequantize_row_q5_1, ref::quantize_row_q5_1},
    {DType::kQ4_K, ref::dequantize_row_q4_k, ref::quantize_row_q4_k},
    {DType::kQ5_K, ref::dequantize_row_q5_k, ref::quantize_row_q5_k},
    {DType::kQ6_K, ref::dequantize_row_q6_k, ref::quantize_row_q6_k},
    {DType::kQ4_1G128, ref::dequantize_row_q4_1_g128, ref::quantize_row_q4_1_g128},
};

}  // namespace

const TypeTraits* find_type_traits(DType t) {
  for (const auto& e : kTraits) {
    if (e.type == t) return &e;
  }
  return nullptr;
}

}  // namespace llmopt::kernels
