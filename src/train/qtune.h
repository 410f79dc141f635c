// End-to-end tuning of quantization parameters (the E2E-QP step of EfficientQAT, Chen et al. 2024):
// the integer codes of every quantized weight stay as the quantizer chose them (unless options.codes),
// and only each group's
// scale d (and, on the asymmetric grid, its offset m) is trained by gradient descent so that the
// quantized model's next-token distributions match the unquantized model's on calibration windows.
//
// Loss: the mean over positions of KL(p_teacher || p_student) over the whole vocabulary (computed as
// the cross-entropy against the teacher's softmax; its entropy is subtracted for the reports). The
// gradient of a weight W = d * q + m reaches its group as dL/dd = sum_j q_j dL/dW_j and dL/dm =
// sum_j dL/dW_j. The trained variables are relative, d = d0 (1 + u) and m = m0 + v |d0| (u = v = 0 at
// the start), so one learning rate fits every tensor; Adam (no weight decay) with a cosine schedule.
// At the end d and m are rounded to fp16, as the GGUF blocks store them, and the loss is measured
// again with those values: the caller keeps the tuned parameters only if that loss is lower.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "quant/gguf_grid.h"
#include "train/params.h"

namespace llmopt::train {

struct TunedWeight {
  int param = -1;                        // index into the layout's tensors: a [rows, cols] weight
  quant::GridTensor* grid = nullptr;     // its codes (fixed) and group parameters (tuned in place)
};

struct QTuneOptions {
  int steps = 100;
  int batch = 4;          // windows per step
  float lr = 1e-3f;       // peak learning rate of u and v
  uint64_t seed = 1;      // order of the windows
  // Also learn each weight's rounding: a code offset z per weight, q = clamp(q0 + round(z)), trained
  // straight through (dL/dz = d dL/dW) with the same learning rate (z is in code steps).
  bool codes = false;
  float code_lr_mult = 10.0f;  // the code offsets' learning rate, relative to lr
  ThreadPool* pool = nullptr;
  // Called every `report_every` steps and after the last, with the mean KL of that step's batch.
  int report_every = 10;
  std::function<void(int step, int steps, double kl)> progress;
  // Early stopping: the last `holdout` windows are not trained on; every `eval_every` steps (0: a tenth
  // of the steps) and after the last, the mean KL on them is measured with fp16-rounded parameters,
  // and the parameters at its lowest are the result (kept only if below the untuned parameters').
  int holdout = 0;
  int eval_every = 0;
  std::function<void(int step, int steps, double held_out_kl, bool best)> on_validation;
};

struct QTuneReport {
  double kl_before = 0.0;  // mean KL over the training windows (all without holdout), before tuning
  double kl_after = 0.0;   // the same with the resulting fp16-rounded parameters
  // With holdout: the mean KL on the held-out windows before tuning and at the chosen step.
  double held_out_before = 0.0, held_out_after = 0.0;
  int best_step = 0;       // with holdout: the step whose parameters are the result (0: none improved)
  bool kept = false;       // the (held-out, with holdout) KL dropped: the grids hold the tuned parameters
};

// teacher: the unquantized parameters; student: the same layout with every tuned weight equal to its
// grid's dequantized values (the other tensors as the quantized model has them). Both are in
// `layout`. windows: token windows of equal length (>= 2), every id < n_vocab. On return the grids
// and student hold the tuned parameters if they lowered the KL divergence (on the held-out windows
// with options.holdout), else the original ones.
// The quantities tuning works with, for tests: the mean KL over `windows` of the student whose tuned
// weights take the grids' current parameters, and (grad != nullptr) its gradient with respect to
// every group's relative variables at zero, in the order of `weights`, rows, groups: u (dKL/du, u the
// relative change of d), then v on the asymmetric grid (m = m0 + v |d0|). student is overwritten
// with the grids' dequantized weights.
// With codes, the gradient continues with dL/dz of every weight (straight through), weight after weight.
Result<double> qtune_kl(const ParamLayout& layout, const std::vector<float>& teacher, std::vector<float>& student,
                        const std::vector<TunedWeight>& weights, const std::vector<std::vector<int32_t>>& windows,
                        std::vector<double>* grad, ThreadPool& pool, bool codes = false);

Result<QTuneReport> tune_grid_params(const ParamLayout& layout, const std::vector<float>& teacher,
                                     std::vector<float>& student, const std::vector<TunedWeight>& weights,
                                     const std::vector<std::vector<int32_t>>& windows, const QTuneOptions& options);

}  // namespace llmopt::train
