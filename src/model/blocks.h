// Shared building blocks of the forward pass over a flattened batch of tokens that belong to many
// sequences: embeddings, row-wise norms, RoPE, causal attention that reads K/V through each
// sequence's block table, the two FFN flavours and the output head. The architecture scripts in
// arch/ compose these; nothing here knows which architecture it serves.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/kv_store.h"
#include "model/linear_observer.h"
#include "model/weights.h"

namespace llmopt::blocks {

// The tokens of one forward call, flattened in batch order, and where each one sits.
struct TokenBatch {
  std::vector<int32_t> ids;                           // [n_tok]
  std::vector<int32_t> pos;                           // [n_tok]
  std::vector<std::span<const int32_t>> block_table;  // [n_tok] block table of the token's sequence
  std::vector<int64_t> out_rows;                      // [n_out] tokens whose logits are wanted, in order
  int32_t max_pos = 0;                                // largest position in the batch
  LinearObserver* observer = nullptr;                 // optional: sees every linear layer's input

  int64_t n_tok() const { return static_cast<int64_t>(ids.size()); }
  int64_t n_out() const { return static_cast<int64_t>(out_rows.size()); }
};

// Scratch activations of one forward call: sized once per call, reused by every layer.
struct Activations {
  Activations(const ModelConfig& cfg, const TokenBatch& batch, int n_threads);

  std::vector<float> x;       // [n_tok, n_embd] residual stream
  std::vector<float> h;       // [n_tok, n_embd] normalized input of a sub-block
  std::vector<float> proj;    // [n_tok, n_embd] sub-block output before the residual add
  std::vector<float> qkv;     // [n_tok, q_dim + 2 * kv_dim] projections (layout: see Qkv)
  std::vector<float> attn;    // [n_tok, q_dim] attention output, heads concatenated
  std::vector<float> ff_a;    // [n_tok, n_ff]
  std::vector<float> ff_b;    // [n_tok, n_ff]
  std::vector<uint8_t> attn_gather;  // [n_threads, 2 * kAttnChunk * head_dim] K/V rows of a chunk that spans blocks
  std::vector<float> attn_ml;  // [n_threads, 2 * kAttnMaxRows] online-softmax max and sum, per worker
  std::vector<int64_t> attn_tiles;  // first token of each attention query tile, then n_tok
  LinearObserver* observer;   // batch.observer
};

// Hands x [n_rows][w.cols()], the input of the linear layer w, to the batch's observer, if any.
inline void observe(const Activations& act, const TensorView& w, const float* x, int64_t n_rows) {
  if (act.observer != nullptr) act.observer->on_linear_input(w, x, n_rows);
}

// Where Q, K and V rows live: row t of Q starts at q + t * q_stride and head h of it at
// + h * head_dim (same for K and V with kv heads). Covers a fused [q|k|v] matrix (GPT-2) and three
// separate matrices (LLaMA) alike.
struct Qkv {
  float* q;
  int64_t q_stride;
  float* k;
  int64_t k_stride;
  float* v;
  int64_t v_stride;
};

// x [n_tok, n_embd] = token_embd[id] (+ position_embd[pos] when the model has learned positions).
void embed(const Weights& w, const TokenBatch& batch, int64_t n_embd, float* x);

// out[r] = LayerNorm(x[r]) * w + b for each of n_rows rows of n (b may be absent).
void layer_norm_rows(const float* x, const TensorView& w, const TensorView& b, float eps, int64_t n_rows,
                     int64_t n, float* out);
// out[r] = RMSNorm(x[r]) * w for each of n_rows rows of n.
void rms_norm_rows(const float* x, const TensorView& w, float eps, int64_t n_rows, int64_t n, float* out);

// Rotates every Q head and K head of each token at the token's position (in place).
void rope(const ModelConfig& cfg, const TokenBatch& batch, const Qkv& qkv, ThreadPool& pool);

// With apply_rope, rotates the Q and K heads first (as rope()). Writes K and V of every token into `kv`
// at its slot, then computes causal attention of every token and head over positions [0, pos] of its
// own sequence into act.attn. Scale 1/sqrt(head_dim); query head h reads kv head h / (n_head /
// n_head_kv). Where each thread owns whole KV heads, it rotates and writes its own heads itself (no
// serial pass, no extra hand-off): only it reads them.
void attention(const ModelConfig& cfg, int32_t il, const TokenBatch& batch, const Qkv& qkv, KvStore& kv,
               Activations& act, ThreadPool& pool, bool apply_rope = false);

// The row norms of the layers, for the products that read normalized rows.
kernels::RowNorm layer_norm_of(const TensorView& w, const TensorView& b, float eps);
kernels::RowNorm rms_norm_of(const TensorView& w, float eps);

// The products `jobs` of h = norm(x) [n_rows][n]. With an observer h is written (act.h-sized buffer h)
// and observed; without one the kernels normalize and quantize each row in one pass where the weights
// allow (kernels::matmul_multi_normed). Same results either way.
void normed_products(const Activations& act, const float* x, const kernels::RowNorm& norm, int64_t n_rows, int64_t n,
                     float* h, std::span<const kernels::MatmulJob> jobs, ThreadPool& pool);

// out [n_tok, n_embd] = down(gelu(up(norm(x)) + b_up)) + b_down   (GPT-2; GELU as the up product's
// epilogue). Uses act.h, act.ff_a.
void ffn_gelu(const LayerWeights& l, const float* x, const kernels::RowNorm& norm, int64_t n_tok, Activations& act,
              float* out, ThreadPool& pool);
// out [n_tok, n_embd] = down(silu(gate(h)) * up(h)), h = norm(x)   (LLaMA). Uses act.h, act.ff_a, act.ff_b.
void ffn_swiglu(const LayerWeights& l, const float* x, const kernels::RowNorm& norm, int64_t n_tok, Activations& act,
                float* out, ThreadPool& pool);

// dst [n_out, n] = the rows of src [n_tok, n] named by batch.out_rows.
void gather_out_rows(const float* src, int64_t n, const TokenBatch& batch, float* dst);
// logits [n_rows, n_vocab] = x [n_rows, n_embd] · output^T
void output_logits(const Weights& w, const float* x, int64_t n_rows, float* logits, ThreadPool& pool);

}  // namespace llmopt::blocks
