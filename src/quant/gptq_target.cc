// gptq_target_map / apply_target_map: GPTQ's asymmetric target (gptq_target.h).
#include "quant/gptq_target.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

#include "quant/affine.h"
#include "quant/linalg.h"

namespace llmopt::quant {

Result<std::vector<float>> gptq_target_map(const float* x_quant, const float* x_ref, int64_t n, int64_t cols,
                                            double damp, ThreadPool* pool) {
  if (n <= 0 || cols <= 0) return error("GPTQ target: no calibration rows");
  if (!(damp >= 0.0) || !std::isfinite(damp)) return error("GPTQ target: dampening must be >= 0");
  LLMOPT_RETURN_IF_ERROR(check_finite(x_quant, n, cols, "calibration activations"));
  LLMOPT_RETURN_IF_ERROR(check_finite(x_ref, n, cols, "reference calibration activations"));
  const size_t nn = static_cast<size_t>(cols * cols);
  if (std::memcmp(x_quant, x_ref, static_cast<size_t>(n * cols) * sizeof(float)) == 0) {
    return std::vector<float>();  // X = X~: W* = W
  }
  // G = X~^T X~ and D = (X - X~)^T X~ as one f32 product of the transposed inputs: the rows of
  // [X~^T; (X - X~)^T] times the rows of X~^T ([cols][n]; k = n calibration rows).
  std::vector<float> lhs(static_cast<size_t>(2 * cols * n)), rhs(static_cast<size_t>(cols * n));
  for (int64_t s = 0; s < n; ++s) {
    const float* xq = x_quant + s * cols;
    const float* xr = x_ref + s * cols;
    for (int64_t i = 0; i < cols; ++i) {
      rhs[i * n + s] = xq[i];
      lhs[i * n + s] = xq[i];
      lhs[(cols + i) * n + s] = xr[i] - xq[i];
    }
  }
  std::vector<float> prod(static_cast<size_t>(2 * cols * cols));
  std::optional<ThreadPool> own;
  if (pool == nullptr) pool = &own.emplace(1);
  kernels::matmul(f32_matrix_view(rhs.data(), cols, n), lhs.data(), 2 * cols, prod.data(), *pool);
  std::vector<double> g(nn);
  for (int64_t i = 0; i < cols; ++i) {  // symmetric up to the order of the f32 sums
    for (int64_t j = 0; j < cols; ++j) g[i * cols + j] = 0.5 * (double{prod[i * cols + j]} + prod[j * cols + i]);
  }
  double mean_diag = 0.0;
  for (int64_t i = 0; i < cols; ++i) mean_diag += g[i * cols + i];
  mean_diag /= static_cast<double>(cols);
  for (int64_t i = 0; i < cols; ++i) {
    // A dead input (always 0 in X~) cannot carry any correction: its column of D is 0 too.
    g[i * cols + i] += damp * mean_diag + (g[i * cols + i] == 0.0 ? 1.0 : 0.0);
  }
  auto ginv = spd_inverse(g, cols);
  if (!ginv.ok()) return ginv.status().with_context("GPTQ target");
  // M = D G^-1, as the f32 product of D's rows with G^-1's rows (G^-1 is symmetric).
  std::vector<float> gi(ginv->begin(), ginv->end());
  std::vector<float> m(nn);
  kernels::matmul(f32_matrix_view(gi.data(), cols, cols), prod.data() + nn, cols, m.data(), *pool);
  return m;
}

void apply_target_map(float* w, int64_t rows, int64_t cols, const std::vector<float>& m, ThreadPool* pool) {
  // w M as the f32 product of w's rows with the rows of M^T.
  std::vector<float> mt(m.size());
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < cols; ++j) mt[j * cols + i] = m[i * cols + j];
  }
  std::vector<float> wm(static_cast<size_t>(rows * cols));
  std::optional<ThreadPool> own;
  if (pool == nullptr) pool = &own.emplace(1);
  kernels::matmul(f32_matrix_view(mt.data(), cols, cols), w, rows, wm.data(), *pool);
  for (int64_t i = 0; i < rows * cols; ++i) w[i] += wm[i];
}

}  // namespace llmopt::quant
