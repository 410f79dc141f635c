// GPTQ's asymmetric target. Quantizing layer by layer, a layer's calibration inputs X~ come from the
// already quantized layers before it, while what the whole model should reproduce is the original
// model's output X W^T on its own inputs X. Plain GPTQ minimizes || X~ (Q - W)^T ||; the asymmetric
// objective (as in GPTAQ, Li et al. 2025) is
//     min_Q || X~ Q^T - X W^T ||^2 + lambda || Q - W ||^2,
// whose unconstrained minimum is the target
//     W* = W + W (X - X~)^T X~ (X~^T X~ + lambda I)^-1 = W (I + M),
// and || X~ Q^T - X W^T ||^2 = || X~ (Q - W*)^T ||^2 + const (up to the lambda term), so GPTQ run on W*
// with the Hessian of X~ minimizes it. lambda = damp * mean(diag X~^T X~) (the same dampening as
// GPTQ's; it keeps W* close to W where X~ does not determine it). X = X~ gives M = 0 exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"

namespace llmopt::quant {

// M ([cols][cols], row-major) from the n rows of x_quant (X~) and x_ref (X), both [n][cols] and row for
// row the same calibration positions, and h, GPTQ's Hessian of the same X~ (HessianAccumulator:
// 2/n X~^T X~), so that M = (2/n) D (h + lambda' I)^-1 with D = (X - X~)^T X~ and lambda' = damp *
// mean(diag h) (the same M as above). D is an f32 product, as GPTQ's reference computes H; the inverse
// is in double. Empty when X = X~ (W* = W). An error for non-finite inputs, a negative damp, or an h
// that the damping does not make positive definite.
Result<std::vector<float>> gptq_target_map(const float* x_quant, const float* x_ref, int64_t n, int64_t cols,
                                            const std::vector<float>& h, double damp, ThreadPool* pool = nullptr);

// w [rows][cols] <- w + w m.
void apply_target_map(float* w, int64_t rows, int64_t cols, const std::vector<float>& m,
                      ThreadPool* pool = nullptr);

}  // namespace llmopt::quant
