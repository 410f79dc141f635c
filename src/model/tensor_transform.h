// Load-time tensor rewrites used by the importers: F16/BF16 -> F32 copies, 2-D transposes
// (Hugging Face Conv1D weights) and the Q/K row permutation from Hugging Face's rotate-half RoPE
// layout to GGUF's adjacent-pair layout. Each writes into storage owned by a MemoryWeightSource.
#pragma once

#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "formats/weight_source.h"

namespace llmopt {

// True for the element types that are plain arrays (F32, F16, BF16).
bool is_plain_float(DType t);

// Adds `name` to dst as an F32 copy of `src` (any plain float type). Errors name the tensor.
Status add_f32_copy(MemoryWeightSource& dst, const std::string& name, const TensorView& src);

// Adds `name` to dst as the transpose of the 2-D plain-float `src` ([a, b] -> [b, a]), same type.
Status add_transposed(MemoryWeightSource& dst, const std::string& name, const TensorView& src);

// Adds `name` to dst as `src` with its rows permuted like llama.cpp's convert_hf_to_gguf `permute`:
// rows are viewed as [n_head, 2, head_dim / 2] and the two inner axes swapped, so row
// h*head_dim + 2*i + j comes from row h*head_dim + j*(head_dim/2) + i. Any row-major type works.
Status add_rope_permuted(MemoryWeightSource& dst, const std::string& name, const TensorView& src,
                         int64_t n_head);

}  // namespace llmopt
