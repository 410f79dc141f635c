// HessianAccumulator: the running sum of x x^T over calibration rows.
#include "quant/hessian.h"

#include <algorithm>
#include <optional>
#include <string>

#include "core/check.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "quant/affine.h"

namespace llmopt::quant {

HessianAccumulator::HessianAccumulator(int64_t cols, ThreadPool* pool) : cols_(cols), pool_(pool) {
  LLMOPT_CHECK(cols > 0);
  sum_.assign(static_cast<size_t>(cols * cols), 0.0);
}

Status HessianAccumulator::add(const float* x, int64_t n) {
  if (n < 0) return error("negative calibration row count " + std::to_string(n));
  LLMOPT_RETURN_IF_ERROR(check_finite(x, n, cols_, "calibration activations"));
  std::optional<ThreadPool> own;
  ThreadPool* pool = pool_ != nullptr ? pool_ : &own.emplace(1);
  const int64_t batch = 4096;
  std::vector<float> xt, prod(static_cast<size_t>(cols_ * cols_));
  for (int64_t s0 = 0; s0 < n; s0 += batch) {
    const int64_t k = std::min(batch, n - s0);
    // X^T [cols][k] is both operands: prod[i][j] = sum_s x_si x_sj.
    xt.resize(static_cast<size_t>(cols_ * k));
    for (int64_t s = 0; s < k; ++s) {
      const float* xs = x + (s0 + s) * cols_;
      for (int64_t i = 0; i < cols_; ++i) xt[i * k + s] = xs[i];
    }
    kernels::matmul(f32_matrix_view(xt.data(), cols_, k), xt.data(), cols_, prod.data(), *pool);
    for (size_t i = 0; i < prod.size(); ++i) sum_[i] += prod[i];
  }
  n_ += n;
  return ok_status();
}

Result<std::vector<float>> HessianAccumulator::hessian() const {
  if (n_ == 0) return error("empty calibration: no activation rows were added to the Hessian");
  std::vector<float> h(static_cast<size_t>(cols_ * cols_));
  const double k = 2.0 / static_cast<double>(n_);
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) {  // symmetric up to the order of the f32 sums
      const float v = static_cast<float>(k * 0.5 * (sum_[i * cols_ + j] + sum_[j * cols_ + i]));
      h[i * cols_ + j] = v;
      h[j * cols_ + i] = v;
    }
  }
  return h;
}

}  // namespace llmopt::quant
