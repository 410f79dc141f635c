// llama.cpp's mixed K-quant file types (Q4_K_M, Q5_K_M): which type each weight matrix gets.
// The rules are those of llama.cpp's llama_tensor_get_type (src/llama-quant.cpp) for dense
// LLaMA-style and GPT-2 models; quant_mix.cc lists exactly which ones are implemented.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "formats/weight_source.h"

namespace llmopt {

enum class QuantMix { kQ4_K_M, kQ5_K_M };

// "q4_k_m" / "q5_k_m" (any case) -> the mix.
std::optional<QuantMix> quant_mix_from_name(const std::string& name);
const char* quant_mix_name(QuantMix mix);  // "Q4_K_M"
// The base type of the mix (Q4_K / Q5_K) and llama.cpp's LLAMA_FTYPE value (15 / 17).
DType quant_mix_base_type(QuantMix mix);
uint32_t quant_mix_file_type(QuantMix mix);

// What llama.cpp needs to know about the whole model to choose a tensor's type.
struct QuantMixModelInfo {
  int32_t n_attn_v = 0;     // number of attn_v-like tensors (attn_v, attn_qkv, attn_kv_b; one per layer)
  int32_t n_ffn_down = 0;   // number of "ffn_down" matrices (llama.cpp: the number of layers)
  bool has_output = false;  // an "output.weight" separate from token_embd
};
QuantMixModelInfo quant_mix_model_info(const WeightSource& src);

// The type llama.cpp picks for the 2-D tensor `name` with rows of `cols` elements, before its
// generic row-size fallback (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16), which
// write_gguf_model applies. Tensors llama.cpp never quantizes (position_embd.weight, *_norm.weight,
// token_types.weight, names not ending in "weight") return nullopt: they keep their own type.
std::optional<DType> quant_mix_tensor_type(QuantMix mix, const std::string& name, int64_t cols,
                                           const QuantMixModelInfo& info);

// llama-quantize's choice for a single-type file type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q6_K, F16, BF16):
// nullopt for tensors it never quantizes (rule 1: written in their own type); for a quantized `base`
// the head, or the tied embeddings, get rule 2 (Q6_K, or Q8_0 when the row does not fit `base`'s
// blocks; a Q8_0 file keeps Q8_0); everything else is `base`. `pure` (llama-quantize --pure): every
// quantizable weight is `base`. Rows that do not fit a type fall back when written (rule 7).
std::optional<DType> single_type_tensor_type(DType base, bool pure, const std::string& name, int64_t cols,
                                             const QuantMixModelInfo& info);
// Whether llama-quantize quantizes this tensor at all (rule 1; 1-D tensors are excluded by the caller).
bool quantizable_weight(const std::string& name);

}  // namespace llmopt
