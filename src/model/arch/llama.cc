// LLaMA: pre-RMSNorm blocks without biases, separate Q/K/V projections, rotary position embedding
// (RoPE) on Q and K, grouped-query attention (n_head_kv <= n_head), SwiGLU feed-forward, final
// RMSNorm and a tied or separate output head.
#include "kernels/kernels.h"
#include "model/arch/arch.h"

namespace llmopt::arch {

void llama_forward(const ModelConfig& cfg, const Weights& w, const blocks::TokenBatch& batch, KvStore& kv,
                   ThreadPool& pool, float* logits) {
  const int64_t n_tok = batch.n_tok();
  const int64_t n_embd = cfg.n_embd;
  const int64_t q_dim = cfg.q_dim();
  const int64_t kv_dim = cfg.kv_dim();
  const float eps = cfg.norm_eps;
  blocks::Activations act(cfg, batch, pool.n_threads());

  // act.qkv holds three matrices back to back: q [n_tok, q_dim], k [n_tok, kv_dim], v [n_tok, kv_dim].
  float* q = act.qkv.data();
  float* k = q + n_tok * q_dim;
  float* v = k + n_tok * kv_dim;
  const blocks::Qkv qkv{q, q_dim, k, kv_dim, v, kv_dim};

  const int32_t first = batch.observer != nullptr ? batch.observer->first_layer() : 0;
  if (first > 0) {
    batch.observer->load_residual(first, act.x.data(), n_tok, n_embd);
  } else {
    blocks::embed(w, batch, n_embd, act.x.data());
  }
  for (int32_t il = first; il < cfg.n_layer; ++il) {
    if (batch.observer != nullptr && !batch.observer->needs_layer(il)) return;
    if (batch.observer != nullptr) batch.observer->on_block_input(il, act.x.data(), n_tok, n_embd);
    const LayerWeights& l = w.layers[il];

    // x += wo(attention(rope(wq h), rope(wk h), wv h)),  h = RMSNorm(x)
    const kernels::MatmulJob qkv_jobs[] = {{&l.wq, nullptr, q}, {&l.wk, nullptr, k}, {&l.wv, nullptr, v}};
    blocks::normed_products(act, act.x.data(), blocks::rms_norm_of(l.attn_norm, eps), n_tok, n_embd, act.h.data(),
                            qkv_jobs, pool);
    blocks::attention(cfg, il, batch, qkv, kv, act, pool, /*apply_rope=*/true);
    blocks::observe(act, l.wo, act.attn.data(), n_tok);
    kernels::matmul(l.wo, act.attn.data(), n_tok, act.proj.data(), pool);
    kernels::add_inplace(act.x.data(), act.proj.data(), n_tok * n_embd);

    // x += down(silu(gate(h)) * up(h)),  h = RMSNorm(x)
    blocks::ffn_swiglu(l, act.x.data(), blocks::rms_norm_of(l.ffn_norm, eps), n_tok, act, act.proj.data(), pool);
    kernels::add_inplace(act.x.data(), act.proj.data(), n_tok * n_embd);
  }

  // Only the requested rows go through the final norm and the head.
  const int64_t n_out = batch.n_out();
  blocks::gather_out_rows(act.x.data(), n_embd, batch, act.proj.data());
  blocks::rms_norm_rows(act.proj.data(), w.output_norm, eps, n_out, n_embd, act.h.data());
  blocks::observe(act, w.output, act.h.data(), n_out);
  blocks::output_logits(w, act.h.data(), n_out, logits, pool);
}

}  // namespace llmopt::arch
