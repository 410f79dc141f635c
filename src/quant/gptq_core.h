// The parts of GPTQ shared by quantize_gptq (affine codes, gptq.cc) and grid_quantize_gptq (GGUF block
// grids, gguf_grid.cc): preparing the Hessian (dead columns, the act-order visiting order, dampening,
// upper Cholesky factor of the inverse) and one row's column sweep with lazy block updates. What a
// column is rounded to is the caller's: a callback returns the quantized value of column j.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant {

struct GptqPrepared {
  std::vector<float> w;         // [rows][cols], original column order, dead columns zeroed
  std::vector<int64_t> perm;    // visiting order: position p visits original column perm[p]
  std::vector<float> u;         // [cols][cols] upper Cholesky factor of the damped, permuted H^-1
};

// Dead columns (H_ii <= 0: the input is always 0) get H_ii = 1 and weight 0; act_order visits columns
// by descending H_ii (a stable sort); H += damp_percent * mean(diag H) * I; U with H^-1 = U^T U.
Result<GptqPrepared> gptq_prepare(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                  double damp_percent, bool act_order);

// One row in visiting order (wr[p] = weight of column perm[p]): for each position j, v = quantize(j, b0,
// b1, err) is its quantized value; e = (wr[j] - v) / U_jj; later columns of the block get wr[k] -= e *
// U_jk at once, the columns after the block once per block. err (block floats) holds the block's e
// values so far, for callbacks that must see the not-yet-applied updates (group_start_params).
template <class Quantize>
void gptq_sweep_row(float* wr, const float* u, int64_t cols, int64_t block, float* err, Quantize&& quantize) {
  for (int64_t b0 = 0; b0 < cols; b0 += block) {
    const int64_t b1 = std::min(b0 + block, cols);
    for (int64_t j = b0; j < b1; ++j) {
      const float v = quantize(j, b0, b1, static_cast<const float*>(err));
      const float* uj = u + j * cols;
      const float e = (wr[j] - v) / uj[j];
      err[j - b0] = e;
      if (e == 0.0f) continue;
      for (int64_t k = j + 1; k < b1; ++k) wr[k] -= e * uj[k];
    }
    for (int64_t j = b0; j < b1; ++j) {
      const float e = err[j - b0];
      if (e == 0.0f) continue;
      const float* uj = u + j * cols;
      for (int64_t k = b1; k < cols; ++k) wr[k] -= e * uj[k];
    }
  }
}

}  // namespace llmopt::quant
