// llama.cpp's Q4_K_M / Q5_K_M tensor-type selection (llama_tensor_get_type and
// llama_tensor_get_type_impl in llama.cpp's src/llama-quant.cpp, the tensor-category version), rewritten
// for the dense architectures llmopt runs (LLaMA-style and GPT-2).
//
// Implemented rules, for ftype Q4_K_M (base type Q4_K) and Q5_K_M (base type Q5_K):
//  1. Not quantized at all (written in their own type): 1-D tensors, names not ending in "weight",
//     names containing "_norm.weight", "position_embd.weight" and "token_types.weight".
//  2. "output.weight", or "token_embd.weight" when the model has no output.weight (tied head):
//     Q8_0 when the row length is not a multiple of the base type's block size (256), else Q6_K.
//  3. "token_embd.weight" with a separate output.weight: the base type.
//  4. attn_v-like tensors ("attn_v.weight", and GPT-2's fused "attn_qkv.weight", and "attn_kv_b.weight"):
//     Q6_K when use_more_bits(i, n), with i the index of this tensor among the attn_v-like ones and n
//     their number; else the base type.
//  5. "ffn_down": Q6_K when use_more_bits(i, n) with i the layer and n the number of ffn_down tensors
//     (= layers); else the base type.
//     use_more_bits(i, n) = i < n/8 || i >= 7*n/8 || (i - n/8) % 3 == 2 (integer division).
//  6. Everything else (attn_q, attn_k, attn_output, ffn_gate, ffn_up): the base type.
//  7. Then llama.cpp's generic fallback for rows that do not fit the block size (Q4_K -> Q5_0,
//     Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when that does not fit either), applied by write_gguf_model.
// The single-type file types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q6_K; F16 and BF16 are never adjusted) use
// rules 1, 2 and 7 only: llama_tensor_get_type_impl has no other rule for them without an imatrix.
// llama-quantize --pure keeps rules 1 and 7 and gives every other weight the base type.
// llama.cpp counts i of rules 4 and 5 with running counters over the tensors in file order; here it is
// the block number N of "blk.N." (the same for a dense model: one such tensor per layer, in layer order).
//
// GPT-2's attn_qkv: llama.cpp versions before the tensor-category refactor matched attn_v by name only
// and gave attn_qkv Q5_K (Q4_K_M) / Q6_K (Q5_K_M) outright. Since the refactor, attn_qkv is attn_v-like
// (rule 4) and that dedicated branch is no longer reached; rule 4 follows the current code.
//
// Left out (they do not apply to the models llmopt loads, or are options llmopt does not have):
// mixture-of-experts rules (n_expert == 8: attn_v / attn_k to Q8_0, attn_output to Q5_K; layer parsing
// of expert tensors), the 70B-only attn_v bump (Q4_K -> Q5_K), the Falcon ffn_down and output
// exceptions, the GLM5 / MXFP4 / multimodal / RWKV / Mamba special cases, and llama-quantize's
// --output-tensor-type, --token-embedding-type, --tensor-type, --pure and imatrix options.
#include "model/quant_mix.h"

#include <algorithm>
#include <cctype>

namespace llmopt {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

bool use_more_bits(int32_t i, int32_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// N of "blk.N.", or -1.
int32_t block_index(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int64_t v = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < (1 << 24)) {
    v = v * 10 + (name[i++] - '0');
  }
  return static_cast<int32_t>(v);
}

}  // namespace

std::optional<QuantMix> quant_mix_from_name(const std::string& name) {
  std::string n = name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "q4_k_m") return QuantMix::kQ4_K_M;
  if (n == "q5_k_m") return QuantMix::kQ5_K_M;
  return std::nullopt;
}

const char* quant_mix_name(QuantMix mix) { return mix == QuantMix::kQ4_K_M ? "Q4_K_M" : "Q5_K_M"; }

DType quant_mix_base_type(QuantMix mix) { return mix == QuantMix::kQ4_K_M ? DType::kQ4_K : DType::kQ5_K; }

uint32_t quant_mix_file_type(QuantMix mix) { return mix == QuantMix::kQ4_K_M ? 15 : 17; }

// attn_v-like: the value projection alone or fused with others (llama.cpp's category_is_attn_v).
bool is_attn_v_like(const std::string& name) {
  return contains(name, "attn_v.weight") || contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight");
}

QuantMixModelInfo quant_mix_model_info(const WeightSource& src) {
  QuantMixModelInfo info;
  for (const NamedTensor& t : src.tensors()) {
    if (t.view.shape.size() < 2) continue;  // biases ("ffn_down.bias") are not counted
    if (is_attn_v_like(t.name)) ++info.n_attn_v;
    if (contains(t.name, "ffn_down")) ++info.n_ffn_down;
    if (t.name == "output.weight") info.has_output = true;
  }
  return info;
}

bool quantizable_weight(const std::string& name) {
  return ends_with(name, "weight") && !contains(name, "_norm.weight") && name != "position_embd.weight" &&
         name != "token_types.weight";
}

// Rule 2 (and the single-type file types): the head, or the tied embeddings.
static std::optional<DType> head_type(DType base, const std::string& name, int64_t cols, const QuantMixModelInfo& info) {
  if (name != "output.weight" && (info.has_output || name != "token_embd.weight")) return std::nullopt;
  if (cols % dtype_info(base).block_size != 0) return DType::kQ8_0;
  return base == DType::kQ8_0 ? DType::kQ8_0 : DType::kQ6_K;
}

std::optional<DType> single_type_tensor_type(DType base, bool pure, const std::string& name, int64_t cols,
                                             const QuantMixModelInfo& info) {
  if (!quantizable_weight(name)) return std::nullopt;
  if (pure || !dtype_info(base).quantized) return base;
  if (auto h = head_type(base, name, cols, info)) return h;
  return base;
}

std::optional<DType> quant_mix_tensor_type(QuantMix mix, const std::string& name, int64_t cols,
                                           const QuantMixModelInfo& info) {
  if (!quantizable_weight(name)) return std::nullopt;
  const DType base = quant_mix_base_type(mix);
  if (auto h = head_type(base, name, cols, info)) return h;
  if (name == "token_embd.weight") return base;
  if (is_attn_v_like(name)) return use_more_bits(block_index(name), info.n_attn_v) ? DType::kQ6_K : base;
  if (contains(name, "ffn_down")) return use_more_bits(block_index(name), info.n_ffn_down) ? DType::kQ6_K : base;
  return base;
}

}  // namespace llmopt
