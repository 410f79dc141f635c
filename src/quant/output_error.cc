// OutputError.
#include "quant/output_error.h"

#include <algorithm>

#include "kernels/kernels.h"

namespace llmopt::quant {

double OutputError::total(const float* d, int64_t rows) {
  y_.resize(static_cast<size_t>(n_ * rows));
  kernels::matmul(f32_matrix_view(d, rows, cols_), x_, n_, y_.data(), pool_);
  double e = 0.0;
  for (float v : y_) e += static_cast<double>(v) * v;
  return e;
}

void OutputError::per_group(const float* d, int64_t rows, int64_t len, std::vector<double>& out) {
  const int64_t blocks = cols_ / len;
  out.assign(static_cast<size_t>(rows * blocks), 0.0);
  if (blocks > 1 && x_blocks_.empty()) {  // the input columns of every block, made contiguous once
    x_blocks_.resize(static_cast<size_t>(n_ * cols_));
    for (int64_t b = 0; b < blocks; ++b) {
      for (int64_t i = 0; i < n_; ++i) {
        std::copy_n(x_ + i * cols_ + b * len, len, x_blocks_.data() + (b * n_ + i) * len);
      }
    }
  }
  y_.resize(static_cast<size_t>(n_ * rows));
  d_block_.resize(static_cast<size_t>(rows * len));
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = blocks > 1 ? x_blocks_.data() + b * n_ * len : x_;
    const float* db = d;
    if (blocks > 1) {
      for (int64_t r = 0; r < rows; ++r) std::copy_n(d + r * cols_ + b * len, len, d_block_.data() + r * len);
      db = d_block_.data();
    }
    kernels::matmul(f32_matrix_view(db, rows, len), xb, n_, y_.data(), pool_);
    for (int64_t i = 0; i < n_; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        const double v = y_[i * rows + r];
        out[r * blocks + b] += v * v;
      }
    }
  }
}

}  // namespace llmopt::quant
