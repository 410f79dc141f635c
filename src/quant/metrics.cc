// KL divergence, top-1 agreement and layer output error.
#include "quant/metrics.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "quant/affine.h"

namespace llmopt::quant {

namespace {

Status check_logits(const float* a, const float* b, int64_t n_tokens, int64_t n_vocab) {
  if (n_tokens <= 0 || n_vocab <= 0) {
    return error("empty logits [" + std::to_string(n_tokens) + " x " + std::to_string(n_vocab) + "]");
  }
  LLMOPT_RETURN_IF_ERROR(check_finite(a, n_tokens, n_vocab, "base logits"));
  return check_finite(b, n_tokens, n_vocab, "variant logits");
}

// log softmax of one row, in double.
void log_softmax(const float* x, int64_t n, std::vector<double>& out) {
  double m = x[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, static_cast<double>(x[i]));
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  const double lse = m + std::log(sum);
  out.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(x[i]) - lse;
}

}  // namespace

Result<double> mean_kl_divergence(const float* base, const float* variant, int64_t n_tokens, int64_t n_vocab) {
  LLMOPT_RETURN_IF_ERROR(check_logits(base, variant, n_tokens, n_vocab));
  std::vector<double> lp, lq;
  double total = 0.0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    log_softmax(base + t * n_vocab, n_vocab, lp);
    log_softmax(variant + t * n_vocab, n_vocab, lq);
    double kl = 0.0;
    for (int64_t i = 0; i < n_vocab; ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
    total += std::max(kl, 0.0);  // only rounding can make it negative
  }
  return total / static_cast<double>(n_tokens);
}

Result<double> same_top1_fraction(const float* base, const float* variant, int64_t n_tokens, int64_t n_vocab) {
  LLMOPT_RETURN_IF_ERROR(check_logits(base, variant, n_tokens, n_vocab));
  int64_t same = 0;
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* a = base + t * n_vocab;
    const float* b = variant + t * n_vocab;
    same += (std::max_element(a, a + n_vocab) - a) == (std::max_element(b, b + n_vocab) - b);
  }
  return static_cast<double>(same) / static_cast<double>(n_tokens);
}

double layer_output_error(const float* x, int64_t n, const float* w, const float* w_hat, int64_t rows,
                          int64_t cols) {
  std::vector<double> d(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) d[i] = static_cast<double>(w[i]) - static_cast<double>(w_hat[i]);
  double total = 0.0;
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = x + s * cols;
    for (int64_t r = 0; r < rows; ++r) {
      const double* dr = d.data() + r * cols;
      double acc = 0.0;
      for (int64_t c = 0; c < cols; ++c) acc += static_cast<double>(xs[c]) * dr[c];
      total += acc * acc;
    }
  }
  return total;
}

}  // namespace llmopt::quant
