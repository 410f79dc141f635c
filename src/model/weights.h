// Weights: typed tensor handles resolved once at load (names and shapes checked there), so the
// forward pass never looks anything up by string. Absent optional tensors have data == nullptr.
#pragma once

#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "formats/weight_source.h"
#include "model/config.h"

namespace llmopt {

struct LayerWeights {
  TensorView attn_norm;     // [n_embd]        f32
  TensorView attn_norm_b;   // [n_embd]        f32 (GPT-2)
  TensorView wq, wk, wv;    // [q_dim|kv_dim, n_embd] (LLaMA)
  TensorView wqkv;          // [q_dim + 2*kv_dim, n_embd] (GPT-2 fused)
  TensorView bqkv;          // [q_dim + 2*kv_dim] f32 (GPT-2)
  TensorView wo;            // [n_embd, q_dim]
  TensorView bo;            // [n_embd] (GPT-2)
  TensorView ffn_norm;      // [n_embd]
  TensorView ffn_norm_b;    // [n_embd] (GPT-2)
  TensorView w_gate;        // [n_ff, n_embd] (LLaMA)
  TensorView w_up;          // [n_ff, n_embd]
  TensorView b_up;          // [n_ff] (GPT-2)
  TensorView w_down;        // [n_embd, n_ff]
  TensorView b_down;        // [n_embd] (GPT-2)
};

struct Weights {
  TensorView tok_embd;      // [n_vocab, n_embd]
  TensorView pos_embd;      // [n_ctx_train, n_embd] (GPT-2)
  TensorView output_norm;   // [n_embd]
  TensorView output_norm_b; // [n_embd] (GPT-2)
  TensorView output;        // [n_vocab, n_embd]; == tok_embd when tied
  std::vector<LayerWeights> layers;
};

// Resolves llama.cpp tensor names ("token_embd.weight", "blk.%d.attn_q.weight", ...) in `src`,
// checks presence, shapes and that each type can be computed with, and fills cfg.tied_head.
// Norm and bias tensors must be f32 (F16/BF16 ones are converted by the loader before this).
Result<Weights> bind_weights(const WeightSource& src, ModelConfig& cfg);

}  // namespace llmopt
