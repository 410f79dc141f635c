// The GPTQ Hessian of a linear layer's reconstruction error: H = 2/N * sum over calibration input rows
// x (length cols) of x x^T. Each batch of up to 4096 rows is one f32 product X^T X (the engine's
// matmul kernels, as GPTQ's reference computes H in f32), and the batches are summed in double.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"

namespace llmopt::quant {

class HessianAccumulator {
 public:
  // cols > 0 (CHECKed); the products run on pool when given (else on one thread).
  explicit HessianAccumulator(int64_t cols, ThreadPool* pool = nullptr);

  // Adds n input rows x[n][cols] (row-major). Non-finite inputs are an error and add nothing.
  Status add(const float* x, int64_t n);
  int64_t cols() const { return cols_; }
  int64_t samples() const { return n_; }
  // H = 2/N * sum x x^T as a dense row-major [cols][cols] float matrix; an error if nothing was added.
  Result<std::vector<float>> hessian() const;

 private:
  int64_t cols_;
  ThreadPool* pool_;
  int64_t n_ = 0;
  std::vector<double> sum_;  // [cols][cols]
};

}  // namespace llmopt::quant
