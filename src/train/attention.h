// Causal multi-head attention over B sequences of T tokens with grouped K/V heads, forward and
// backward, for training (no KV cache: every sequence is seen whole).
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace llmopt::train {

struct AttnShape {
  int64_t batch = 0;  // B sequences
  int64_t seq = 0;    // T tokens each; row t = b * T + i
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // query head h reads kv head h / (n_head / n_head_kv)
  int64_t head_dim = 0;
};

// q [B*T, n_head*hd], k and v [B*T, n_head_kv*hd] -> out [B*T, n_head*hd] (overwritten).
// probs [B, n_head, T, T] receives the softmax weights (row i holds positions 0..i).
template <class S>
void attention_forward(const AttnShape& s, const S* q, const S* k, const S* v, S* probs, S* out,
                       ThreadPool& pool);
// Gradients for dout; dq, dk and dv are OVERWRITTEN. Work is split by (sequence, kv head), so each
// thread owns the dq/dk/dv entries it writes.
template <class S>
void attention_backward(const AttnShape& s, const S* q, const S* k, const S* v, const S* probs, const S* dout,
                        S* dq, S* dk, S* dv, ThreadPool& pool);

}  // namespace llmopt::train
