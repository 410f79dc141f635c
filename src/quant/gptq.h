// GPTQ (Frantar et al., 2022): quantizes a weight matrix column by column, each column's rounding error
// spread over the columns not yet quantized through the inverse Hessian of the layer's reconstruction
// error, so that X W^T changes as little as possible on the calibration inputs X.
//
// Algorithm (per the paper's Algorithm 1), with H from HessianAccumulator (H = 2/N sum x x^T):
//   1. dead columns (H_ii == 0: the input is always 0) get H_ii = 1 and weight 0;
//   2. act_order: columns are visited by descending H_ii (a stable sort), and the codes are written back
//      in the original column order;
//   3. dampening: H += damp_percent * mean(diag H) * I;
//   4. U = upper Cholesky factor of H^-1 (H^-1 = U^T U);
//   5. for each column j in visiting order: q = Q(w_j); e = (w_j - q) / U_jj; w_k -= e * U_jk for k > j.
//      The update is applied at once inside blocks of block_size columns and to the remaining columns
//      once per block (lazy batch update); the result is the same up to float rounding.
// Quantization parameters:
//   kTensor / kChannel: computed once from the (dead-column-zeroed) weights before the loop;
//   kGroup without act_order: a group's scale and zero are computed from the already error-updated
//     weights when the loop reaches the group's first column (as in the reference implementation);
//   kGroup with act_order ("static groups"): each group's parameters are computed before the loop from
//     the original weights of its own (original-order) columns, and every column is quantized with the
//     parameters of the group it belongs to in the original order. The result is thus an ordinary
//     AffineTensor (scales in the original group order, no column permutation to store).
// Every row is independent given U, so rows are processed in parallel when a pool is given.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "quant/affine.h"

namespace llmopt::quant {

struct GptqOptions {
  double damp_percent = 0.01;  // fraction of mean(diag H) added to the diagonal; >= 0
  int block_size = 128;        // columns per lazy-update block; >= 1
  bool act_order = false;      // visit columns by descending diag(H)
  ThreadPool* pool = nullptr;  // optional: rows are split over its threads
};

// w: [rows][cols] row-major; h: [cols][cols] row-major (symmetric).
Result<AffineTensor> quantize_gptq(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                   const AffineSpec& spec, const GptqOptions& options = {});

}  // namespace llmopt::quant
