// GPT-2: learned absolute positions, pre-LayerNorm blocks with biases everywhere, fused QKV,
// multi-head attention, GELU (tanh) feed-forward, final LayerNorm, head usually tied to token_embd.
#include "kernels/kernels.h"
#include "model/arch/arch.h"

namespace llmopt::arch {

void gpt2_forward(const ModelConfig& cfg, const Weights& w, const blocks::TokenBatch& batch, KvStore& kv,
                  ThreadPool& pool, float* logits) {
  const int64_t n_tok = batch.n_tok();
  const int64_t n_embd = cfg.n_embd;
  const int64_t q_dim = cfg.q_dim();
  const int64_t kv_dim = cfg.kv_dim();
  const float eps = cfg.norm_eps;
  blocks::Activations act(cfg, batch, pool.n_threads());

  // act.qkv holds the fused projection: [n_tok, q_dim | kv_dim | kv_dim].
  const int64_t qkv_dim = q_dim + 2 * kv_dim;
  float* fused = act.qkv.data();
  const blocks::Qkv qkv{fused, qkv_dim, fused + q_dim, qkv_dim, fused + q_dim + kv_dim, qkv_dim};

  const int32_t first = batch.observer != nullptr ? batch.observer->first_layer() : 0;
  if (first > 0) {
    batch.observer->load_residual(first, act.x.data(), n_tok, n_embd);
  } else {
    blocks::embed(w, batch, n_embd, act.x.data());  // token + position embeddings
  }
  for (int32_t il = first; il < cfg.n_layer; ++il) {
    if (batch.observer != nullptr && !batch.observer->needs_layer(il)) return;
    if (batch.observer != nullptr) batch.observer->on_block_input(il, act.x.data(), n_tok, n_embd);
    const LayerWeights& l = w.layers[il];

    // x += attn_output(attention(qkv(LayerNorm(x))))
    const kernels::MatmulJob qkv_job[] = {{&l.wqkv, l.bqkv.f32(), fused}};
    blocks::normed_products(act, act.x.data(), blocks::layer_norm_of(l.attn_norm, l.attn_norm_b, eps), n_tok, n_embd,
                            act.h.data(), qkv_job, pool);
    blocks::attention(cfg, il, batch, qkv, kv, act, pool);
    blocks::observe(act, l.wo, act.attn.data(), n_tok);
    kernels::matmul_bias(l.wo, l.bo.f32(), act.attn.data(), n_tok, act.proj.data(), pool);
    kernels::add_inplace(act.x.data(), act.proj.data(), n_tok * n_embd);

    // x += down(gelu(up(LayerNorm(x))))
    blocks::ffn_gelu(l, act.x.data(), blocks::layer_norm_of(l.ffn_norm, l.ffn_norm_b, eps), n_tok, act,
                     act.proj.data(), pool);
    kernels::add_inplace(act.x.data(), act.proj.data(), n_tok * n_embd);
  }

  // Only the requested rows go through the final norm and the head.
  const int64_t n_out = batch.n_out();
  blocks::gather_out_rows(act.x.data(), n_embd, batch, act.proj.data());
  blocks::layer_norm_rows(act.proj.data(), w.output_norm, w.output_norm_b, eps, n_out, n_embd, act.h.data());
  blocks::observe(act, w.output, act.h.data(), n_out);
  blocks::output_logits(w, act.h.data(), n_out, logits, pool);
}

}  // namespace llmopt::arch
