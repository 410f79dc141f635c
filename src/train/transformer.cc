// The training forward/backward pass (see transformer.h): LLaMA (RMSNorm, RoPE, GQA, SwiGLU) and
// GPT-2 (LayerNorm, learned positions, fused QKV with biases, GELU), with the head tied to the
// token embedding or a separate output.weight. The forward pass mirrors model/arch/*.cc op for op.
#include "train/transformer.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "train/attention.h"

namespace llmopt::train {

template <class S>
Transformer<S>::Transformer(const ParamLayout& layout) : layout_(layout) {
  const ModelConfig& c = layout_.cfg;
  if (c.arch == Arch::kLlama) rope_ = make_rope_table(c.n_ctx_train, c.n_rot, c.rope_theta);
}

template <class S>
void Transformer<S>::resize(int64_t B, int64_t T) {
  if (B == B_ && T == T_) return;
  const ModelConfig& c = layout_.cfg;
  LLMOPT_CHECK(B > 0 && T > 0 && T <= c.n_ctx_train);
  B_ = B;
  T_ = T;
  N_ = B * T;
  const size_t N = static_cast<size_t>(N_), D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  const bool llama = c.arch == Arch::kLlama;
  inputs_.resize(N);
  targets_.resize(N);
  tape_.resize(static_cast<size_t>(c.n_layer));
  for (LayerTape& t : tape_) {
    t.xin.resize(N * D);
    t.h1.resize(N * D);
    t.r1.resize(N);
    t.mu1.resize(N);
    t.q.resize(N * Q);
    t.k.resize(N * KV);
    t.v.resize(N * KV);
    t.probs.resize(static_cast<size_t>(B) * c.n_head * T * T);
    t.att.resize(N * Q);
    t.xmid.resize(N * D);
    t.h2.resize(N * D);
    t.r2.resize(N);
    t.mu2.resize(N);
    t.ffa.resize(N * F);
    t.ffb.resize(llama ? N * F : 0);
    t.act.resize(N * F);
  }
  x_.resize(N * D);
  hf_.resize(N * D);
  rf_.resize(N);
  muf_.resize(N);
  logits_.resize(N * c.n_vocab);
  proj_.resize(N * D);
  dx_.resize(N * D);
  dh_.resize(N * D);
  datt_.resize(N * Q);
  dq_.resize(N * Q);
  dk_.resize(N * KV);
  dv_.resize(N * KV);
  da_.resize(N * F);
  dg_.resize(N * F);
  du_.resize(N * F);
}

template <class S>
void Transformer<S>::norm_fwd(const S* x, const S* w, const S* b, S* y, S* mu, S* rstd) {
  const ModelConfig& c = layout_.cfg;
  if (c.arch == Arch::kLlama) {
    rmsnorm_forward<S>(x, w, static_cast<S>(c.norm_eps), N_, c.n_embd, y, rstd);
  } else {
    layernorm_forward<S>(x, w, b, static_cast<S>(c.norm_eps), N_, c.n_embd, y, mu, rstd);
  }
}

template <class S>
void Transformer<S>::norm_bwd(const S* dy, const S* x, const S* w, const S* mu, const S* rstd, S* dx, S* dw,
                              S* db) {
  const ModelConfig& c = layout_.cfg;
  if (c.arch == Arch::kLlama) {
    rmsnorm_backward<S>(dy, x, w, rstd, N_, c.n_embd, dx, dw);
  } else {
    layernorm_backward<S>(dy, x, w, mu, rstd, N_, c.n_embd, dx, dw, db);
  }
}

template <class S>
double Transformer<S>::run(const S* params, const int32_t* tokens, int64_t B, int64_t T, S* grad,
                           ThreadPool& pool) {
  return run(params, tokens, B, T, grad, pool, nullptr);
}

template <class S>
double Transformer<S>::run(const S* params, const int32_t* tokens, int64_t B, int64_t T, S* grad,
                           ThreadPool& pool, const SoftTargets* soft) {
  soft_ = soft;
  resize(B, T);
  const int32_t V = layout_.cfg.n_vocab;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < T; ++i) {
      const int32_t in = tokens[b * (T + 1) + i], tgt = tokens[b * (T + 1) + i + 1];
      LLMOPT_CHECK(in >= 0 && in < V && tgt >= 0 && tgt < V);
      inputs_[static_cast<size_t>(b * T + i)] = in;
      targets_[static_cast<size_t>(b * T + i)] = tgt;
    }
  }
  const double loss = forward(params, grad != nullptr, pool);
  if (grad != nullptr) backward(params, grad, pool);
  soft_ = nullptr;
  return loss;
}

template <class S>
double Transformer<S>::forward(const S* P, bool want_grad, ThreadPool& pool) {
  const ParamLayout& L = layout_;
  const ModelConfig& c = L.cfg;
  const int64_t N = N_, D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  const bool llama = c.arch == Arch::kLlama;
  const AttnShape shape{B_, T_, c.n_head, c.n_head_kv, c.head_dim};

  const S* E = L.at(P, L.tok_embd);
  const S* pos = L.at(P, L.pos_embd);
  for (int64_t t = 0; t < N; ++t) {
    S* row = x_.data() + t * D;
    std::memcpy(row, E + static_cast<int64_t>(inputs_[static_cast<size_t>(t)]) * D, D * sizeof(S));
    if (pos != nullptr) axpy<S>(S(1), pos + (t % T_) * D, row, D);
  }
  for (int32_t il = 0; il < c.n_layer; ++il) {
    const LayerParams& lp = L.layers[static_cast<size_t>(il)];
    LayerTape& tp = tape_[static_cast<size_t>(il)];
    std::copy(x_.begin(), x_.end(), tp.xin.begin());

    // x += wo(attention(q, k, v)),  q/k/v from norm(x)
    norm_fwd(x_.data(), L.at(P, lp.attn_norm), L.at(P, lp.attn_norm_b), tp.h1.data(), tp.mu1.data(),
             tp.r1.data());
    if (llama) {
      linear_forward<S>(tp.h1.data(), L.at(P, lp.wq), nullptr, N, D, Q, tp.q.data(), pool);
      linear_forward<S>(tp.h1.data(), L.at(P, lp.wk), nullptr, N, D, KV, tp.k.data(), pool);
      linear_forward<S>(tp.h1.data(), L.at(P, lp.wv), nullptr, N, D, KV, tp.v.data(), pool);
      rope_rows<S>(tp.q.data(), N, T_, c.n_head, c.head_dim, rope_, c.rope_layout, false);
      rope_rows<S>(tp.k.data(), N, T_, c.n_head_kv, c.head_dim, rope_, c.rope_layout, false);
    } else {
      // The fused [q | k | v] rows of attn_qkv are three consecutive row blocks.
      const S* w = L.at(P, lp.wqkv);
      const S* b = L.at(P, lp.bqkv);
      linear_forward<S>(tp.h1.data(), w, b, N, D, Q, tp.q.data(), pool);
      linear_forward<S>(tp.h1.data(), w + Q * D, b + Q, N, D, KV, tp.k.data(), pool);
      linear_forward<S>(tp.h1.data(), w + (Q + KV) * D, b + Q + KV, N, D, KV, tp.v.data(), pool);
    }
    attention_forward<S>(shape, tp.q.data(), tp.k.data(), tp.v.data(), tp.probs.data(), tp.att.data(), pool);
    linear_forward<S>(tp.att.data(), L.at(P, lp.wo), L.at(P, lp.bo), N, Q, D, proj_.data(), pool);
    for (int64_t i = 0; i < N * D; ++i) x_[i] += proj_[i];
    std::copy(x_.begin(), x_.end(), tp.xmid.begin());

    // x += down(ffn(norm(x)))
    norm_fwd(x_.data(), L.at(P, lp.ffn_norm), L.at(P, lp.ffn_norm_b), tp.h2.data(), tp.mu2.data(),
             tp.r2.data());
    if (llama) {
      linear_forward<S>(tp.h2.data(), L.at(P, lp.w_gate), nullptr, N, D, F, tp.ffa.data(), pool);
      linear_forward<S>(tp.h2.data(), L.at(P, lp.w_up), nullptr, N, D, F, tp.ffb.data(), pool);
      swiglu_forward<S>(tp.ffa.data(), tp.ffb.data(), tp.act.data(), N * F);
    } else {
      linear_forward<S>(tp.h2.data(), L.at(P, lp.w_up), L.at(P, lp.b_up), N, D, F, tp.ffa.data(), pool);
      gelu_forward<S>(tp.ffa.data(), tp.act.data(), N * F);
    }
    linear_forward<S>(tp.act.data(), L.at(P, lp.w_down), L.at(P, lp.b_down), N, F, D, proj_.data(), pool);
    for (int64_t i = 0; i < N * D; ++i) x_[i] += proj_[i];
  }

  norm_fwd(x_.data(), L.at(P, L.output_norm), L.at(P, L.output_norm_b), hf_.data(), muf_.data(), rf_.data());
  const S* head = L.output >= 0 ? L.at(P, L.output) : E;
  linear_forward<S>(hf_.data(), head, nullptr, N, D, c.n_vocab, logits_.data(), pool);
  const S scale = static_cast<S>(1.0 / static_cast<double>(N));
  const double total =
      soft_ != nullptr
          ? distill_cross_entropy<S>(logits_.data(), targets_.data(), *soft_, N, c.n_vocab, want_grad, scale, pool)
          : cross_entropy<S>(logits_.data(), targets_.data(), N, c.n_vocab, want_grad, scale, pool);
  return total / static_cast<double>(N);
}

template <class S>
void Transformer<S>::backward(const S* P, S* G, ThreadPool& pool) {
  const ParamLayout& L = layout_;
  const ModelConfig& c = L.cfg;
  const int64_t N = N_, D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  const bool llama = c.arch == Arch::kLlama;
  const AttnShape shape{B_, T_, c.n_head, c.n_head_kv, c.head_dim};
  std::fill(G, G + L.total, S(0));
  auto zero = [](std::vector<S>& v) { std::fill(v.begin(), v.end(), S(0)); };

  // The head: logits = hf · Hᵀ, H = E when tied (logits_ now holds d loss / d logits).
  const S* E = L.at(P, L.tok_embd);
  S* dE = L.at(G, L.tok_embd);
  const S* H = L.output >= 0 ? L.at(P, L.output) : E;
  S* dH = L.output >= 0 ? L.at(G, L.output) : dE;
  zero(dh_);
  linear_backward<S>(logits_.data(), hf_.data(), H, N, D, c.n_vocab, dh_.data(), dH, nullptr, pool);
  zero(dx_);
  norm_bwd(dh_.data(), x_.data(), L.at(P, L.output_norm), muf_.data(), rf_.data(), dx_.data(),
           L.at(G, L.output_norm), L.at(G, L.output_norm_b));

  for (int32_t il = c.n_layer - 1; il >= 0; --il) {
    const LayerParams& lp = L.layers[static_cast<size_t>(il)];
    LayerTape& tp = tape_[static_cast<size_t>(il)];

    // FFN: x_out = xmid + down(act). dx holds d/dx_out, which flows to xmid unchanged plus via the FFN.
    zero(da_);
    linear_backward<S>(dx_.data(), tp.act.data(), L.at(P, lp.w_down), N, F, D, da_.data(), L.at(G, lp.w_down),
                       L.at(G, lp.b_down), pool);
    zero(dh_);
    if (llama) {
      swiglu_backward<S>(tp.ffa.data(), tp.ffb.data(), da_.data(), dg_.data(), du_.data(), N * F);
      linear_backward<S>(dg_.data(), tp.h2.data(), L.at(P, lp.w_gate), N, D, F, dh_.data(),
                         L.at(G, lp.w_gate), nullptr, pool);
      linear_backward<S>(du_.data(), tp.h2.data(), L.at(P, lp.w_up), N, D, F, dh_.data(), L.at(G, lp.w_up),
                         nullptr, pool);
    } else {
      gelu_backward<S>(tp.ffa.data(), da_.data(), du_.data(), N * F);
      linear_backward<S>(du_.data(), tp.h2.data(), L.at(P, lp.w_up), N, D, F, dh_.data(), L.at(G, lp.w_up),
                         L.at(G, lp.b_up), pool);
    }
    norm_bwd(dh_.data(), tp.xmid.data(), L.at(P, lp.ffn_norm), tp.mu2.data(), tp.r2.data(), dx_.data(),
             L.at(G, lp.ffn_norm), L.at(G, lp.ffn_norm_b));

    // Attention: xmid = xin + wo(att).
    zero(datt_);
    linear_backward<S>(dx_.data(), tp.att.data(), L.at(P, lp.wo), N, Q, D, datt_.data(), L.at(G, lp.wo),
                       L.at(G, lp.bo), pool);
    attention_backward<S>(shape, tp.q.data(), tp.k.data(), tp.v.data(), tp.probs.data(), datt_.data(),
                          dq_.data(), dk_.data(), dv_.data(), pool);
    zero(dh_);
    if (llama) {
      rope_rows<S>(dq_.data(), N, T_, c.n_head, c.head_dim, rope_, c.rope_layout, true);
      rope_rows<S>(dk_.data(), N, T_, c.n_head_kv, c.head_dim, rope_, c.rope_layout, true);
      linear_backward<S>(dq_.data(), tp.h1.data(), L.at(P, lp.wq), N, D, Q, dh_.data(), L.at(G, lp.wq),
                         nullptr, pool);
      linear_backward<S>(dk_.data(), tp.h1.data(), L.at(P, lp.wk), N, D, KV, dh_.data(), L.at(G, lp.wk),
                         nullptr, pool);
      linear_backward<S>(dv_.data(), tp.h1.data(), L.at(P, lp.wv), N, D, KV, dh_.data(), L.at(G, lp.wv),
                         nullptr, pool);
    } else {
      const S* w = L.at(P, lp.wqkv);
      S* dw = L.at(G, lp.wqkv);
      S* db = L.at(G, lp.bqkv);
      linear_backward<S>(dq_.data(), tp.h1.data(), w, N, D, Q, dh_.data(), dw, db, pool);
      linear_backward<S>(dk_.data(), tp.h1.data(), w + Q * D, N, D, KV, dh_.data(), dw + Q * D, db + Q, pool);
      linear_backward<S>(dv_.data(), tp.h1.data(), w + (Q + KV) * D, N, D, KV, dh_.data(), dw + (Q + KV) * D,
                         db + Q + KV, pool);
    }
    norm_bwd(dh_.data(), tp.xin.data(), L.at(P, lp.attn_norm), tp.mu1.data(), tp.r1.data(), dx_.data(),
             L.at(G, lp.attn_norm), L.at(G, lp.attn_norm_b));
  }

  // Embeddings: x0 = E[id] (+ pos[t % T]).
  S* dpos = L.at(G, L.pos_embd);
  for (int64_t t = 0; t < N; ++t) {
    const S* g = dx_.data() + t * D;
    axpy<S>(S(1), g, dE + static_cast<int64_t>(inputs_[static_cast<size_t>(t)]) * D, D);
    if (dpos != nullptr) axpy<S>(S(1), g, dpos + (t % T_) * D, D);
  }
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace llmopt::train
