// Forward and backward of the row-wise ops of a transformer, for training. Templated on the scalar
// (float for training, double for gradient checks); instantiated for both in ops.cc and linear.cc.
// Conventions: activations are row-major [n_rows, width]; a weight is [n_out, n_in] (llama.cpp's
// layout, y = x·Wᵀ). Backward functions ACCUMULATE (+=) into every gradient they are given, so the
// caller zeroes a gradient once and several uses of a tensor add up. Every result is computed in a
// fixed order whatever the thread count, so runs are reproducible bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace llmopt::train {

// Sum of a[i] * b[i] with 16 partial sums in a fixed order (vectorizable without fast-math).
// Defined here so the attention loops (short head vectors) can inline it.
template <class S>
inline S dot(const S* a, const S* b, int64_t n) {
  constexpr int kLanes = 16;
  S acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  S tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0] + tail;
}
// y[i] += a * x[i]
template <class S>
inline void axpy(S a, const S* x, S* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

// y [n, out] = x [n, in] · wᵀ (+ b when b != nullptr). Rows of y are split over the pool.
template <class S>
void linear_forward(const S* x, const S* w, const S* b, int64_t n, int64_t in, int64_t out, S* y,
                    ThreadPool& pool);
// dx [n, in] += dy · w;  dw [out, in] += dyᵀ · x;  db [out] += column sums of dy (null ones skipped).
template <class S>
void linear_backward(const S* dy, const S* x, const S* w, int64_t n, int64_t in, int64_t out, S* dx, S* dw,
                     S* db, ThreadPool& pool);

// RMSNorm rows: y = x · r · w, r = 1 / sqrt(mean(x²) + eps) (statistics in double, as the engine);
// saves r per row.
template <class S>
void rmsnorm_forward(const S* x, const S* w, S eps, int64_t n, int64_t d, S* y, S* rstd);
// dx += ∂, dw += ∂ for dy.
template <class S>
void rmsnorm_backward(const S* dy, const S* x, const S* w, const S* rstd, int64_t n, int64_t d, S* dx, S* dw);

// LayerNorm rows: y = (x - mean) · r · w + b, r = 1 / sqrt(var + eps); saves mean and r per row.
template <class S>
void layernorm_forward(const S* x, const S* w, const S* b, S eps, int64_t n, int64_t d, S* y, S* mean,
                       S* rstd);
template <class S>
void layernorm_backward(const S* dy, const S* x, const S* w, const S* mean, const S* rstd, int64_t n,
                        int64_t d, S* dx, S* dw, S* db);

// RoPE angles for positions [0, n_pos): cos/sin of pos · base^(-2i/n_rot), i < n_rot/2, rounded to
// float exactly as the inference kernel does.
struct RopeTable {
  int64_t n_rot = 0;
  std::vector<float> cos, sin;  // [n_pos][n_rot / 2]
};
RopeTable make_rope_table(int64_t n_pos, int64_t n_rot, float base);
// Rotates every head of each row in place; row r sits at position r % seq_len. `inverse` applies the
// transposed rotation (the backward pass of a rotation is its inverse).
template <class S>
void rope_rows(S* x, int64_t n_rows, int64_t seq_len, int64_t n_heads, int64_t head_dim,
               const RopeTable& table, kernels::RopeLayout layout, bool inverse);

// GELU (tanh approximation) out = gelu(u); backward: du = dout · gelu'(u) (overwrites du).
template <class S>
void gelu_forward(const S* u, S* out, int64_t n);
template <class S>
void gelu_backward(const S* u, const S* dout, S* du, int64_t n);
// SwiGLU out = silu(g) · u; backward overwrites dg and du.
template <class S>
void swiglu_forward(const S* g, const S* u, S* out, int64_t n);
template <class S>
void swiglu_backward(const S* g, const S* u, const S* dout, S* dg, S* du, int64_t n);

// Cross-entropy of each row of logits [n, vocab] against targets: returns the sum of the row losses
// (in double, summed in row order). When want_grad, logits is overwritten with
// grad_scale · (softmax(row) - onehot(target)).
template <class S>
double cross_entropy(S* logits, const int32_t* targets, int64_t n, int64_t vocab, bool want_grad,
                     S grad_scale, ThreadPool& pool);

// Distillation targets of the rows of a batch: row r has k entries (ids[r*k + j], probs[r*k + j]),
// the teacher's top-k distribution at temperature 1 in decreasing order; unused entries have id -1.
// A row with a single entry is a hard label (the teacher did not predict that position).
struct SoftTargets {
  int32_t k = 0;
  const int32_t* ids = nullptr;
  const float* probs = nullptr;
  double alpha = 1.0;  // weight of the distillation term; 1 - alpha goes to the hard label
  double temp = 1.0;   // distillation temperature T
};

// Knowledge-distillation loss per row (Hinton et al.): with q = the teacher's top-k probabilities
// raised to 1/T and renormalized, and s_T = softmax(logits / T),
//   loss = alpha · T² · CE(q, s_T) + (1 - alpha) · CE(onehot(target), softmax(logits)),
// rows with a hard label use the second term alone. CE(q, s) = -sum q log s, so the soft term is the
// KL divergence KL(q || s_T) plus q's entropy (a constant). Returns the sum of the row losses; when
// want_grad, logits is overwritten with grad_scale · d(loss)/d(logits) =
//   grad_scale · (alpha · T · (s_T - q) + (1 - alpha) · (softmax(logits) - onehot)).
template <class S>
double distill_cross_entropy(S* logits, const int32_t* targets, const SoftTargets& soft, int64_t n,
                             int64_t vocab, bool want_grad, S grad_scale, ThreadPool& pool);

}  // namespace llmopt::train
