// gptq_target_map / apply_target_map: GPTQ's asymmetric target (gptq_target.h).
#include "quant/gptq_target.h"

#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "kernels/kernels.h"
#include "quant/affine.h"
#include "quant/linalg.h"

namespace llmopt::quant {

Result<std::vector<float>> gptq_target_map(const float* x_quant, const float* x_ref, int64_t n, int64_t cols,
                                            const std::vector<float>& h, double damp, ThreadPool* pool) {
  if (n <= 0 || cols <= 0) return error("GPTQ target: no calibration rows");
  if (!(damp >= 0.0) || !std::isfinite(damp)) return error("GPTQ target: dampening must be >= 0");
  const size_t nn = static_cast<size_t>(cols * cols);
  if (h.size() != nn) {
    return error("GPTQ target: the Hessian is not " + std::to_string(cols) + " x " + std::to_string(cols));
  }
  LLMOPT_RETURN_IF_ERROR(check_finite(x_quant, n, cols, "calibration activations"));
  LLMOPT_RETURN_IF_ERROR(check_finite(x_ref, n, cols, "reference calibration activations"));
  if (std::memcmp(x_quant, x_ref, static_cast<size_t>(n * cols) * sizeof(float)) == 0) {
    return std::vector<float>();  // X = X~: W* = W
  }
  // D = (X - X~)^T X~: the rows of (X - X~)^T times the rows of X~^T ([cols][n]; k = n rows), in f32.
  std::vector<float> dt(static_cast<size_t>(cols * n)), qt(static_cast<size_t>(cols * n));
  for (int64_t s = 0; s < n; ++s) {
    const float* xq = x_quant + s * cols;
    const float* xr = x_ref + s * cols;
    for (int64_t i = 0; i < cols; ++i) {
      qt[i * n + s] = xq[i];
      dt[i * n + s] = xr[i] - xq[i];
    }
  }
  std::optional<ThreadPool> own;
  if (pool == nullptr) pool = &own.emplace(1);
  std::vector<float> d(nn);
  kernels::matmul(f32_matrix_view(qt.data(), cols, n), dt.data(), cols, d.data(), *pool);
  // (h + lambda' I)^-1 (2/n), with h as GPTQ sees it; a dead input (h_ii = 0: always 0 in X~) carries no
  // correction (its column of D is 0 too).
  std::vector<double> g(h.begin(), h.end());
  double mean_diag = 0.0;
  for (int64_t i = 0; i < cols; ++i) mean_diag += g[i * cols + i];
  mean_diag /= static_cast<double>(cols);
  for (int64_t i = 0; i < cols; ++i) g[i * cols + i] += damp * mean_diag + (g[i * cols + i] == 0.0 ? 1.0 : 0.0);
  auto ginv = spd_inverse(g, cols);
  if (!ginv.ok()) return ginv.status().with_context("GPTQ target");
  std::vector<float> gi(nn);
  const double k = 2.0 / static_cast<double>(n);
  for (size_t i = 0; i < nn; ++i) gi[i] = static_cast<float>(k * (*ginv)[i]);
  // M = D G^-1, as the f32 product of D's rows with G^-1's rows (G^-1 is symmetric).
  std::vector<float> m(nn);
  kernels::matmul(f32_matrix_view(gi.data(), cols, cols), d.data(), cols, m.data(), *pool);
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
