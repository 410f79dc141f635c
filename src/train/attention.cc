// Causal attention forward/backward (see attention.h). The forward follows the engine's kernels:
// scores scaled by 1/sqrt(head_dim), softmax with the max subtracted and the sum in double.
#include "train/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "train/ops.h"

namespace llmopt::train {

template <class S>
void attention_forward(const AttnShape& s, const S* q, const S* k, const S* v, S* probs, S* out,
                       ThreadPool& pool) {
  const int64_t T = s.seq, hd = s.head_dim;
  const int64_t q_dim = s.n_head * hd, kv_dim = s.n_head_kv * hd;
  const int64_t group = s.n_head / s.n_head_kv;
  const S scale = S(1) / std::sqrt(static_cast<S>(hd));
  pool.parallel_for(s.batch * s.n_head, [&](int64_t begin, int64_t end, int) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.n_head, h = item % s.n_head;
      const int64_t kv_off = (h / group) * hd;
      for (int64_t i = 0; i < T; ++i) {
        const int64_t ti = b * T + i;
        const S* qi = q + ti * q_dim + h * hd;
        S* p = probs + ((b * s.n_head + h) * T + i) * T;
        S mx = -std::numeric_limits<S>::infinity();
        for (int64_t j = 0; j <= i; ++j) {
          p[j] = scale * dot(qi, k + (b * T + j) * kv_dim + kv_off, hd);
          mx = std::max(mx, p[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j <= i; ++j) {
          p[j] = std::exp(p[j] - mx);
          sum += p[j];
        }
        const S inv = static_cast<S>(1.0 / sum);
        for (int64_t j = 0; j <= i; ++j) p[j] *= inv;
        for (int64_t j = i + 1; j < T; ++j) p[j] = S(0);
        S* o = out + ti * q_dim + h * hd;
        std::fill(o, o + hd, S(0));
        for (int64_t j = 0; j <= i; ++j) axpy(p[j], v + (b * T + j) * kv_dim + kv_off, o, hd);
      }
    }
  });
}

template <class S>
void attention_backward(const AttnShape& s, const S* q, const S* k, const S* v, const S* probs, const S* dout,
                        S* dq, S* dk, S* dv, ThreadPool& pool) {
  const int64_t T = s.seq, hd = s.head_dim;
  const int64_t q_dim = s.n_head * hd, kv_dim = s.n_head_kv * hd;
  const int64_t group = s.n_head / s.n_head_kv;
  const S scale = S(1) / std::sqrt(static_cast<S>(hd));
  pool.parallel_for(s.batch * s.n_head_kv, [&](int64_t begin, int64_t end, int) {
    std::vector<S> dp(static_cast<size_t>(T));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.n_head_kv, kvh = item % s.n_head_kv;
      const int64_t kv_off = kvh * hd;
      for (int64_t j = 0; j < T; ++j) {
        std::fill_n(dk + (b * T + j) * kv_dim + kv_off, hd, S(0));
        std::fill_n(dv + (b * T + j) * kv_dim + kv_off, hd, S(0));
      }
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          const int64_t ti = b * T + i;
          const S* p = probs + ((b * s.n_head + h) * T + i) * T;
          const S* doi = dout + ti * q_dim + h * hd;
          const S* qi = q + ti * q_dim + h * hd;
          // out_i = Σ_j p_j v_j  ->  dp_j = do·v_j, dv_j += p_j do.
          S pdp = 0;
          for (int64_t j = 0; j <= i; ++j) {
            const int64_t tj = b * T + j;
            dp[j] = dot(doi, v + tj * kv_dim + kv_off, hd);
            pdp += p[j] * dp[j];
            axpy(p[j], doi, dv + tj * kv_dim + kv_off, hd);
          }
          // Softmax: ds_j = p_j (dp_j - Σ p dp); scores_j = scale q·k_j.
          S* dqi = dq + ti * q_dim + h * hd;
          std::fill(dqi, dqi + hd, S(0));
          for (int64_t j = 0; j <= i; ++j) {
            const int64_t tj = b * T + j;
            const S ds = p[j] * (dp[j] - pdp) * scale;
            axpy(ds, k + tj * kv_dim + kv_off, dqi, hd);
            axpy(ds, qi, dk + tj * kv_dim + kv_off, hd);
          }
        }
      }
    }
  });
}

template void attention_forward<float>(const AttnShape&, const float*, const float*, const float*, float*,
                                       float*, ThreadPool&);
template void attention_forward<double>(const AttnShape&, const double*, const double*, const double*,
                                        double*, double*, ThreadPool&);
template void attention_backward<float>(const AttnShape&, const float*, const float*, const float*,
                                        const float*, const float*, float*, float*, float*, ThreadPool&);
template void attention_backward<double>(const AttnShape&, const double*, const double*, const double*,
                                         const double*, const double*, double*, double*, double*,
                                         ThreadPool&);

}  // namespace llmopt::train
