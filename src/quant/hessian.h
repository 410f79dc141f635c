// The GPTQ Hessian of a linear layer's reconstruction error: H = 2/N * sum over calibration input rows
// x (length cols) of x x^T, accumulated in double one batch at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant {

class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t cols);  // cols > 0 (CHECKed)

  // Adds n input rows x[n][cols] (row-major). Non-finite inputs are an error and add nothing.
  Status add(const float* x, int64_t n);
  int64_t cols() const { return cols_; }
  int64_t samples() const { return n_; }
  // H = 2/N * sum x x^T as a dense row-major [cols][cols] float matrix; an error if nothing was added.
  Result<std::vector<float>> hessian() const;

 private:
  int64_t cols_;
  int64_t n_ = 0;
  std::vector<double> sum_;  // upper triangle used; mirrored on output
};

}  // namespace llmopt::quant
