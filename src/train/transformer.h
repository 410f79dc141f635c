// The training forward and backward pass of a whole LLaMA or GPT-2 model over B sequences of T
// tokens: causal, full sequences, mean next-token cross-entropy. Activations of every layer are kept
// for the manual backward pass. Templated on the scalar: float to train, double for gradient checks.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "train/ops.h"
#include "train/params.h"

namespace llmopt::train {

template <class S>
class Transformer {
 public:
  explicit Transformer(const ParamLayout& layout);

  // tokens: B rows of T + 1 ids; row b predicts tokens[b][1..T] from tokens[b][0..T-1].
  // Returns the mean cross-entropy over the B*T targets. When grad != nullptr it is OVERWRITTEN
  // with d(loss)/d(params) in the parameter layout. T must not exceed the config's n_ctx_train.
  double run(const S* params, const int32_t* tokens, int64_t B, int64_t T, S* grad, ThreadPool& pool);
  // The same with distillation targets for the B*T positions (row b*T + i predicts tokens[b][i+1]):
  // returns the mean distillation loss (see distill_cross_entropy).
  double run(const S* params, const int32_t* tokens, int64_t B, int64_t T, S* grad, ThreadPool& pool,
             const SoftTargets* soft);
  // The logits [B*T, n_vocab] of the last run() without a gradient.
  const std::vector<S>& logits() const { return logits_; }

  const ParamLayout& layout() const { return layout_; }

 private:
  struct LayerTape {
    std::vector<S> xin, h1, r1, mu1;   // input of the layer, its attention norm and statistics
    std::vector<S> q, k, v;            // projections (after RoPE for LLaMA)
    std::vector<S> probs, att;         // softmax weights [B, H, T, T], attention output [N, q_dim]
    std::vector<S> xmid, h2, r2, mu2;  // residual after attention, FFN norm and statistics
    std::vector<S> ffa, ffb, act;      // LLaMA: gate, up, silu(gate)·up; GPT-2: up (pre-GELU), -, gelu(up)
  };

  void resize(int64_t B, int64_t T);
  double forward(const S* P, bool want_grad, ThreadPool& pool);
  void backward(const S* P, S* G, ThreadPool& pool);
  void norm_fwd(const S* x, const S* w, const S* b, S* y, S* mu, S* rstd);
  void norm_bwd(const S* dy, const S* x, const S* w, const S* mu, const S* rstd, S* dx, S* dw, S* db);

  ParamLayout layout_;
  RopeTable rope_;
  const SoftTargets* soft_ = nullptr;  // during run() only
  int64_t B_ = 0, T_ = 0, N_ = 0;
  std::vector<int32_t> inputs_, targets_;  // [N]
  std::vector<LayerTape> tape_;
  std::vector<S> x_, hf_, rf_, muf_, logits_, proj_;
  std::vector<S> dx_, dh_, datt_, dq_, dk_, dv_, da_, dg_, du_;  // backward scratch
};

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace llmopt::train
