// Output error of a weight difference on calibration inputs, ||x d^T||^2, in total and per group of
// columns: what AWQ's scale and clipping searches minimize (plain and on the GGUF grids alike). The
// products run through the kernels' f32 matmul; sums of squares are kept in double.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace llmopt::quant {

class OutputError {
 public:
  // x [n][cols]: the calibration inputs (kept by pointer).
  OutputError(const float* x, int64_t n, int64_t cols, ThreadPool& pool) : x_(x), n_(n), cols_(cols), pool_(pool) {}

  // ||x d^T||_F^2 for d [rows][cols].
  double total(const float* d, int64_t rows);
  // For column blocks of width len: out[r * (cols / len) + b] = ||x[:, block b] . d[r, block b]^T||^2,
  // the error of each group's partial output (the group numbering of AffineSpec).
  void per_group(const float* d, int64_t rows, int64_t len, std::vector<double>& out);

 private:
  const float* x_;
  int64_t n_, cols_;
  ThreadPool& pool_;
  std::vector<float> y_, x_blocks_, d_block_;
};

}  // namespace llmopt::quant
