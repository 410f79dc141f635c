// HessianAccumulator: the running sum of x x^T over calibration rows.
#include "quant/hessian.h"

#include <string>

#include "core/check.h"
#include "quant/affine.h"

namespace llmopt::quant {

HessianAccumulator::HessianAccumulator(int64_t cols) : cols_(cols) {
  LLMOPT_CHECK(cols > 0);
  sum_.assign(static_cast<size_t>(cols * cols), 0.0);
}

Status HessianAccumulator::add(const float* x, int64_t n) {
  if (n < 0) return error("negative calibration row count " + std::to_string(n));
  LLMOPT_RETURN_IF_ERROR(check_finite(x, n, cols_, "calibration activations"));
  std::vector<double> row(static_cast<size_t>(cols_));
  for (int64_t s = 0; s < n; ++s) {
    const float* xs = x + s * cols_;
    for (int64_t j = 0; j < cols_; ++j) row[j] = xs[j];
    for (int64_t i = 0; i < cols_; ++i) {
      const double xi = row[i];
      if (xi == 0.0) continue;
      double* dst = sum_.data() + i * cols_;
      for (int64_t j = i; j < cols_; ++j) dst[j] += xi * row[j];
    }
  }
  n_ += n;
  return ok_status();
}

Result<std::vector<float>> HessianAccumulator::hessian() const {
  if (n_ == 0) return error("empty calibration: no activation rows were added to the Hessian");
  std::vector<float> h(static_cast<size_t>(cols_ * cols_));
  const double k = 2.0 / static_cast<double>(n_);
  for (int64_t i = 0; i < cols_; ++i) {
    for (int64_t j = i; j < cols_; ++j) {
      const float v = static_cast<float>(k * sum_[i * cols_ + j]);
      h[i * cols_ + j] = v;
      h[j * cols_ + i] = v;
    }
  }
  return h;
}

}  // namespace llmopt::quant
