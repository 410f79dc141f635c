// Quality metrics for comparing a quantized model or layer with its baseline: mean KL divergence of the
// next-token distributions, agreement of the top-1 token, and a linear layer's output error.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace llmopt::quant {

// Mean over the n_tokens rows of KL(P_base || P_variant), P = softmax(logits) computed in double.
// Logits are [n_tokens][n_vocab] row-major. Errors on empty input or non-finite logits.
Result<double> mean_kl_divergence(const float* base_logits, const float* variant_logits, int64_t n_tokens,
                                  int64_t n_vocab);
// Fraction of rows whose argmax (first index on ties) is the same in both.
Result<double> same_top1_fraction(const float* base_logits, const float* variant_logits, int64_t n_tokens,
                                  int64_t n_vocab);
// ||x w^T - x w_hat^T||_F^2 (in double) for x [n][cols] and w, w_hat [rows][cols].
double layer_output_error(const float* x, int64_t n, const float* w, const float* w_hat, int64_t rows,
                          int64_t cols);

}  // namespace llmopt::quant
