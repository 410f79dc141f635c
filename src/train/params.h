// The trainable parameters of a LLaMA or GPT-2 model as one flat f32 buffer, cut into tensors with
// llama.cpp's names and shapes (so export is a copy), plus typed indices the forward pass uses.
// Gradients and AdamW moments share the same layout (same offsets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"

namespace llmopt::train {

struct ParamTensor {
  std::string name;            // "blk.0.attn_q.weight"
  std::vector<int64_t> shape;  // outermost first: a weight is [n_out, n_in]
  size_t offset = 0;           // into the flat buffer, in elements
  int64_t numel = 0;
  // AdamW weight decay applies to projection matrices only; norms, biases and the token / position
  // embeddings (the token embedding is also the tied output head) are not decayed.
  bool decay = false;
};

// Indices into ParamLayout::tensors; -1 where the architecture has no such tensor.
struct LayerParams {
  int attn_norm = -1, attn_norm_b = -1;
  int wq = -1, wk = -1, wv = -1;  // LLaMA
  int wqkv = -1, bqkv = -1;       // GPT-2 (fused rows [q | k | v])
  int wo = -1, bo = -1;
  int ffn_norm = -1, ffn_norm_b = -1;
  int w_gate = -1, w_up = -1, b_up = -1, w_down = -1, b_down = -1;
};

struct ParamLayout {
  ModelConfig cfg;
  std::vector<ParamTensor> tensors;  // in GGUF writing order
  size_t total = 0;                  // elements
  int tok_embd = -1, pos_embd = -1, output_norm = -1, output_norm_b = -1;
  int output = -1;  // an untied head [n_vocab, n_embd]; -1: the head is tok_embd
  std::vector<LayerParams> layers;

  // Pointer to tensor `idx` inside a buffer with this layout (nullptr for idx < 0).
  template <class S>
  S* at(S* base, int idx) const {
    return idx < 0 ? nullptr : base + tensors[static_cast<size_t>(idx)].offset;
  }
};

// Checks what training supports: positive sizes, n_embd divisible by n_head, n_head by n_head_kv,
// GPT-2 without GQA, an even head size for LLaMA (RoPE pairs). Fills head_dim / n_rot.
Status validate_train_config(ModelConfig& cfg);
// Layout for a config that passed validate_train_config.
ParamLayout make_param_layout(const ModelConfig& cfg);

// Deterministic initialization from a seed: matrices and embeddings ~ N(0, 0.02), the output
// projections (attn_output, ffn_down) ~ N(0, 0.02 / sqrt(2 * n_layer)), norm weights 1, biases 0.
// Tensors are drawn in layout order from one Rng stream seeded with `seed`.
std::vector<float> init_params(const ParamLayout& layout, uint64_t seed);

// Total trainable parameter count (the tied head counted once).
inline size_t param_count(const ParamLayout& layout) { return layout.total; }

}  // namespace llmopt::train
