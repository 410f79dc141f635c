// Row-op forward/backward for training (see ops.h; the linear layer is in linear.cc). Forward formulas follow
// kernels/ref/ops.cc operation for operation in float, so the training loss matches the inference engine's.
#include "train/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "core/check.h"

namespace llmopt::train {

template <class S>
void rmsnorm_forward(const S* x, const S* w, S eps, int64_t n, int64_t d, S* y, S* rstd) {
  for (int64_t r = 0; r < n; ++r) {
    const S* xr = x + r * d;
    double sum = 0.0;
    for (int64_t i = 0; i < d; ++i) sum += static_cast<double>(xr[i]) * xr[i];
    const S mean = static_cast<S>(sum / static_cast<double>(d));
    const S scale = S(1) / std::sqrt(mean + eps);
    for (int64_t i = 0; i < d; ++i) y[r * d + i] = (xr[i] * scale) * w[i];
    rstd[r] = scale;
  }
}

template <class S>
void rmsnorm_backward(const S* dy, const S* x, const S* w, const S* rstd, int64_t n, int64_t d, S* dx,
                      S* dw) {
  // y_i = x_i r w_i with r = (mean(x²) + eps)^(-1/2), so dr/dx_j = -r³ x_j / d and
  // dx_j = r w_j dy_j - x_j r³ / d · Σ_i dy_i w_i x_i.
  for (int64_t r = 0; r < n; ++r) {
    const S* xr = x + r * d;
    const S* g = dy + r * d;
    const S rs = rstd[r];
    S s = 0;
    for (int64_t i = 0; i < d; ++i) {
      s += g[i] * w[i] * xr[i];
      dw[i] += g[i] * xr[i] * rs;
    }
    const S c = s * rs * rs * rs / static_cast<S>(d);
    S* dxr = dx + r * d;
    for (int64_t i = 0; i < d; ++i) dxr[i] += rs * w[i] * g[i] - c * xr[i];
  }
}

template <class S>
void layernorm_forward(const S* x, const S* w, const S* b, S eps, int64_t n, int64_t d, S* y, S* mean,
                       S* rstd) {
  for (int64_t r = 0; r < n; ++r) {
    const S* xr = x + r * d;
    double sum = 0.0;
    for (int64_t i = 0; i < d; ++i) sum += xr[i];
    const double mu = sum / static_cast<double>(d);
    double var = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      const double dv = xr[i] - mu;
      var += dv * dv;
    }
    var /= static_cast<double>(d);
    const S m = static_cast<S>(mu);
    const S scale = S(1) / std::sqrt(static_cast<S>(var) + eps);
    for (int64_t i = 0; i < d; ++i) y[r * d + i] = (xr[i] - m) * scale * w[i] + b[i];
    mean[r] = m;
    rstd[r] = scale;
  }
}

template <class S>
void layernorm_backward(const S* dy, const S* x, const S* w, const S* mean, const S* rstd, int64_t n,
                        int64_t d, S* dx, S* dw, S* db) {
  // With xhat = (x - mean) r and g = dy w: dx = r (g - mean(g) - xhat · mean(g xhat)).
  for (int64_t r = 0; r < n; ++r) {
    const S* xr = x + r * d;
    const S* gy = dy + r * d;
    const S m = mean[r], rs = rstd[r];
    S sg = 0, sgx = 0;
    for (int64_t i = 0; i < d; ++i) {
      const S xh = (xr[i] - m) * rs;
      const S g = gy[i] * w[i];
      sg += g;
      sgx += g * xh;
      dw[i] += gy[i] * xh;
      db[i] += gy[i];
    }
    sg /= static_cast<S>(d);
    sgx /= static_cast<S>(d);
    S* dxr = dx + r * d;
    for (int64_t i = 0; i < d; ++i) {
      const S xh = (xr[i] - m) * rs;
      dxr[i] += rs * (gy[i] * w[i] - sg - xh * sgx);
    }
  }
}

RopeTable make_rope_table(int64_t n_pos, int64_t n_rot, float base) {
  RopeTable t;
  t.n_rot = n_rot;
  const int64_t half = n_rot / 2;
  t.cos.resize(static_cast<size_t>(n_pos * half));
  t.sin.resize(static_cast<size_t>(n_pos * half));
  for (int64_t p = 0; p < n_pos; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double theta =
          static_cast<double>(p) *
          std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
      t.cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(theta));
      t.sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(theta));
    }
  }
  return t;
}

template <class S>
void rope_rows(S* x, int64_t n_rows, int64_t seq_len, int64_t n_heads, int64_t head_dim,
               const RopeTable& table, kernels::RopeLayout layout, bool inverse) {
  const int64_t half = table.n_rot / 2;
  const int64_t stride = layout == kernels::RopeLayout::kAdjacent ? 2 : 1;
  const int64_t offset = layout == kernels::RopeLayout::kAdjacent ? 1 : half;
  for (int64_t r = 0; r < n_rows; ++r) {
    const int64_t pos = r % seq_len;
    const float* cs = table.cos.data() + pos * half;
    const float* sn = table.sin.data() + pos * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      S* v = x + (r * n_heads + h) * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        S* p0 = v + i * stride;
        S* p1 = p0 + offset;
        const S c = static_cast<S>(cs[i]);
        const S s = inverse ? -static_cast<S>(sn[i]) : static_cast<S>(sn[i]);
        const S x0 = *p0, x1 = *p1;
        *p0 = x0 * c - x1 * s;
        *p1 = x0 * s + x1 * c;
      }
    }
  }
}

namespace {
template <class S>
constexpr S kSqrt2OverPi = static_cast<S>(0.79788456080286535588);
template <class S>
constexpr S kGeluCoef = static_cast<S>(0.044715);
}  // namespace

template <class S>
void gelu_forward(const S* u, S* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S v = u[i];
    out[i] = S(0.5) * v * (S(1) + std::tanh(kSqrt2OverPi<S> * v * (S(1) + kGeluCoef<S> * v * v)));
  }
}

template <class S>
void gelu_backward(const S* u, const S* dout, S* du, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S v = u[i];
    const S th = std::tanh(kSqrt2OverPi<S> * v * (S(1) + kGeluCoef<S> * v * v));
    const S dinner = kSqrt2OverPi<S> * (S(1) + S(3) * kGeluCoef<S> * v * v);
    du[i] = dout[i] * (S(0.5) * (S(1) + th) + S(0.5) * v * (S(1) - th * th) * dinner);
  }
}

template <class S>
void swiglu_forward(const S* g, const S* u, S* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = g[i] / (S(1) + std::exp(-g[i])) * u[i];
}

template <class S>
void swiglu_backward(const S* g, const S* u, const S* dout, S* dg, S* du, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S sig = S(1) / (S(1) + std::exp(-g[i]));
    const S silu = g[i] * sig;
    dg[i] = dout[i] * u[i] * sig * (S(1) + g[i] * (S(1) - sig));
    du[i] = dout[i] * silu;
  }
}

namespace {

// One row of the plain cross-entropy (see cross_entropy); shared with the hard rows of distillation
// so that both give the same bits.
template <class S>
double hard_row_ce(S* l, int32_t tgt, int64_t vocab, bool want_grad, S grad_scale) {
  LLMOPT_CHECK(tgt >= 0 && tgt < vocab);
  S mx = -std::numeric_limits<S>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, l[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(l[i] - mx));
  const double loss = std::log(sum) + static_cast<double>(mx) - static_cast<double>(l[tgt]);
  if (want_grad) {
    const double inv = 1.0 / sum;
    for (int64_t i = 0; i < vocab; ++i) {
      l[i] = static_cast<S>(std::exp(static_cast<double>(l[i] - mx)) * inv) * grad_scale;
    }
    l[tgt] -= grad_scale;
  }
  return loss;
}

}  // namespace

template <class S>
double cross_entropy(S* logits, const int32_t* targets, int64_t n, int64_t vocab, bool want_grad,
                     S grad_scale, ThreadPool& pool) {
  std::vector<double> row_loss(static_cast<size_t>(n));
  pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t r = begin; r < end; ++r) {
      row_loss[static_cast<size_t>(r)] = hard_row_ce(logits + r * vocab, targets[r], vocab, want_grad, grad_scale);
    }
  });
  double total = 0.0;
  for (double v : row_loss) total += v;
  return total;
}

namespace {

// softmax(l / temp) into p, returns log-sum-exp(l / temp). The double version (gradient checks)
// works in double throughout; the float version (training) uses the vectorized softmax kernel, since
// the exponentials over the vocabulary are a large part of a training step otherwise.
double softmax_t(const double* l, int64_t vocab, double temp, double* p) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, static_cast<double>(l[i]) / temp);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) {
    p[i] = std::exp(static_cast<double>(l[i]) / temp - mx);
    sum += p[i];
  }
  const double inv = 1.0 / sum;
  for (int64_t i = 0; i < vocab; ++i) p[i] *= inv;
  return std::log(sum) + mx;
}

double softmax_t(const float* l, int64_t vocab, double temp, float* p) {
  int64_t am = 0;
  for (int64_t i = 1; i < vocab; ++i) am = l[i] > l[am] ? i : am;
  if (temp == 1.0) {
    std::copy(l, l + vocab, p);
  } else {
    const float inv_t = static_cast<float>(1.0 / temp);
    for (int64_t i = 0; i < vocab; ++i) p[i] = l[i] * inv_t;
  }
  kernels::softmax_inplace(p, vocab);
  // p[am] = exp(l[am]/T - lse) >= 1/vocab, so its log is accurate.
  return static_cast<double>(p[am]) > 0.0 ? static_cast<double>(l[am]) / temp - std::log(static_cast<double>(p[am]))
                                          : static_cast<double>(l[am]) / temp;
}

// The probability buffers: double for the double path, float for training.
template <class S>
using ProbT = std::conditional_t<std::is_same_v<S, float>, float, double>;

}  // namespace

template <class S>
double distill_cross_entropy(S* logits, const int32_t* targets, const SoftTargets& soft, int64_t n,
                             int64_t vocab, bool want_grad, S grad_scale, ThreadPool& pool) {
  LLMOPT_CHECK(soft.k >= 2 && soft.temp > 0.0 && soft.alpha >= 0.0 && soft.alpha <= 1.0);
  std::vector<double> row_loss(static_cast<size_t>(n));
  const int64_t k = soft.k;
  pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
    std::vector<ProbT<S>> p1(static_cast<size_t>(vocab)), pt(static_cast<size_t>(vocab));
    std::vector<double> q(static_cast<size_t>(k));
    for (int64_t r = begin; r < end; ++r) {
      S* l = logits + r * vocab;
      const int32_t tgt = targets[r];
      LLMOPT_CHECK(tgt >= 0 && tgt < vocab);
      const int32_t* ids = soft.ids + r * k;
      const float* probs = soft.probs + r * k;
      const bool is_soft = ids[1] >= 0 && soft.alpha > 0.0;
      const double a = is_soft ? soft.alpha : 0.0, T = soft.temp;
      if (a == 0.0) {
        row_loss[static_cast<size_t>(r)] = hard_row_ce(l, tgt, vocab, want_grad, grad_scale);
        continue;
      }
      double loss = 0.0;
      double lse1 = 0.0;
      if (a < 1.0 || T == 1.0) lse1 = softmax_t(l, vocab, 1.0, p1.data());
      if (a < 1.0) loss += (1.0 - a) * (lse1 - static_cast<double>(l[tgt]));
      const ProbT<S>* s_t = p1.data();  // softmax(l / T)
      if (a > 0.0) {
        double lse_t = lse1;
        if (T != 1.0) {
          lse_t = softmax_t(l, vocab, T, pt.data());
          s_t = pt.data();
        }
        // q ∝ p^(1/T) over the stored entries.
        double qsum = 0.0;
        for (int64_t j = 0; j < k; ++j) {
          q[j] = ids[j] >= 0 ? std::pow(static_cast<double>(probs[j]), 1.0 / T) : 0.0;
          qsum += q[j];
        }
        LLMOPT_CHECK(qsum > 0.0);
        double ce = lse_t;
        for (int64_t j = 0; j < k; ++j) {
          q[j] /= qsum;
          if (ids[j] >= 0) ce -= q[j] * (static_cast<double>(l[ids[j]]) / T);
        }
        loss += a * T * T * ce;
      }
      row_loss[static_cast<size_t>(r)] = loss;
      if (want_grad) {
        const double g = static_cast<double>(grad_scale);
        for (int64_t i = 0; i < vocab; ++i) {
          double d = 0.0;
          if (a < 1.0) d += (1.0 - a) * static_cast<double>(p1[i]);
          if (a > 0.0) d += a * T * static_cast<double>(s_t[i]);
          l[i] = static_cast<S>(d * g);
        }
        if (a < 1.0) l[tgt] -= static_cast<S>((1.0 - a) * g);
        if (a > 0.0) {
          for (int64_t j = 0; j < k; ++j) {
            if (ids[j] >= 0) l[ids[j]] -= static_cast<S>(a * T * q[j] * g);
          }
        }
      }
    }
  });
  double total = 0.0;
  for (double v : row_loss) total += v;
  return total;
}

#define LLMOPT_TRAIN_OPS_INSTANTIATE(S)                                                                     \
  template void rmsnorm_forward<S>(const S*, const S*, S, int64_t, int64_t, S*, S*);                        \
  template void rmsnorm_backward<S>(const S*, const S*, const S*, const S*, int64_t, int64_t, S*, S*);      \
  template void layernorm_forward<S>(const S*, const S*, const S*, S, int64_t, int64_t, S*, S*, S*);        \
  template void layernorm_backward<S>(const S*, const S*, const S*, const S*, const S*, int64_t, int64_t,   \
                                      S*, S*, S*);                                                          \
  template void rope_rows<S>(S*, int64_t, int64_t, int64_t, int64_t, const RopeTable&, kernels::RopeLayout, \
                             bool);                                                                         \
  template void gelu_forward<S>(const S*, S*, int64_t);                                                     \
  template void gelu_backward<S>(const S*, const S*, S*, int64_t);                                          \
  template void swiglu_forward<S>(const S*, const S*, S*, int64_t);                                         \
  template void swiglu_backward<S>(const S*, const S*, const S*, S*, S*, int64_t);                          \
  template double cross_entropy<S>(S*, const int32_t*, int64_t, int64_t, bool, S, ThreadPool&);             \
  template double distill_cross_entropy<S>(S*, const int32_t*, const SoftTargets&, int64_t, int64_t, bool, S, \
                                           ThreadPool&);

LLMOPT_TRAIN_OPS_INSTANTIATE(float)
LLMOPT_TRAIN_OPS_INSTANTIATE(double)

}  // namespace llmopt::train
