// ModelConfig: the hyperparameters of a loaded model, read once from GGUF-style metadata.
// Variants (GQA, untied head, rope base, rope layout) are values here, not code paths elsewhere.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "formats/metadata.h"
#include "kernels/kernels.h"

namespace llmopt {

enum class Arch { kGpt2, kLlama };
const char* arch_name(Arch a);

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string name;          // general.name if present
  int32_t n_vocab = 0;
  int32_t n_ctx_train = 0;   // context length the model was trained with (positions for GPT-2)
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_head = 0;
  int32_t n_head_kv = 0;     // == n_head for MHA; fewer for GQA/MQA
  int32_t n_ff = 0;
  int32_t head_dim = 0;      // n_embd / n_head
  int32_t n_rot = 0;         // rotated dims per head (llama: rope.dimension_count, default head_dim)
  float norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  kernels::RopeLayout rope_layout = kernels::RopeLayout::kAdjacent;
  bool tied_head = true;     // output projection shares token_embd

  int32_t kv_dim() const { return n_head_kv * head_dim; }
  int32_t q_dim() const { return n_head * head_dim; }
};

// Reads general.architecture and "<arch>.*" keys (llama.cpp's names). n_vocab is taken from
// "<arch>.vocab_size" or, failing that, the caller fills it from token_embd's shape.
// Errors name the missing or impossible key ("llama.attention.head_count = 0").
Result<ModelConfig> config_from_metadata(const Metadata& md);
// Writes the keys config_from_metadata reads (used by convert and synth).
void config_to_metadata(const ModelConfig& cfg, Metadata& md);

}  // namespace llmopt
