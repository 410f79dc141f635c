// AWQ, activation-aware weight quantization (Lin et al., 2023): input channels that see large
// activations matter more, so their weight columns are scaled up before round-to-nearest quantization
// (finer effective resolution) and the activations are scaled down by the same factors.
//
// Contract: given w [rows][cols] and calibration activations x [n][cols], quantize_awq returns per-input-
// channel scales s [cols] and Q = quantize(w · diag(s)) (with per-group clipping). The output-equivalent
// quantized layer is
//     y = (x / s) · dequantize(Q)^T          (x / s: each input channel j divided by s_j),
// i.e. the effective weights are dequantize(Q) · diag(1 / s) (see awq_effective_weights). The caller folds
// 1/s into whatever produces x (the previous norm's weight or the previous linear's output rows), and
// keeps Q as the layer's weights.
//
// Search, all on the calibration data:
//   1. m_j = mean over rows of |x_j|; for alpha in {0, 1/grid, ..., 1}: s = max(m^alpha, 1e-4),
//      s /= sqrt(max(s) * min(s)); error = ||x w^T - x W_hat^T||_F^2 with W_hat = deq(RTN(w s)) / s.
//      The alpha with the smallest error wins (alpha = 0 is plain RTN, so AWQ never loses to RTN here).
//   2. clipping (kChannel and kGroup; kTensor is not clipped): for each quantization group of w · s, the
//      range is shrunk by ratios 1, 1 - clip_step, ..., min_clip, keeping the ratio with the smallest error
//      of that group's partial output (x / s)_group · (w s - deq)_group^T. The clipped result is kept only
//      if it lowers the whole layer's error.
// Errors are measured with the kernels' f32 matmul over all n calibration rows: about
// (grid + 1 + clip ratios + 1) products of size n x rows x cols (pass a subsample of x to go faster).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "quant/affine.h"

namespace llmopt::quant {

struct AwqOptions {
  int grid = 20;           // alpha steps: 0, 1/grid, ..., 1
  bool clip_search = true;
  float clip_step = 0.05f;
  float min_clip = 0.5f;
  ThreadPool* pool = nullptr;  // optional: the error matmuls run on it
};

struct AwqResult {
  std::vector<float> scales;        // s [cols]
  float alpha = 0.0f;               // the chosen exponent
  AffineTensor quantized;           // Q(w · diag(s)) with the chosen clipping ratios
  std::vector<float> clip_ratios;   // one per group of `quantized` (all 1 without clipping)
  double output_error = 0.0;        // ||x w^T - x W_eff^T||_F^2 on the calibration data
  double rtn_error = 0.0;           // the same for plain RTN (alpha = 0, no clipping), for comparison
};

Result<AwqResult> quantize_awq(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n,
                               const AffineSpec& spec, const AwqOptions& options = {});

// dequantize(r.quantized) · diag(1 / r.scales): the weights to use with unscaled inputs.
std::vector<float> awq_effective_weights(const AwqResult& r);

}  // namespace llmopt::quant
