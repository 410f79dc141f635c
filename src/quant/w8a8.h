// W8A8: 8-bit symmetric activations (per-token dynamic or per-tensor static scale) times 8-bit symmetric
// weights (per-channel or per-tensor scale, from quantize_rtn), with an exact int32 reference GEMM.
// Activation code: q = clamp(round_half_even(x / scale), -127, 127); value = scale * q.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "quant/affine.h"

namespace llmopt::quant {

// Static per-tensor activation scale from the calibration max |x|: abs_max / 127.
Result<float> static_activation_scale(float calib_abs_max);

struct Int8Activations {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int8_t> q;       // [rows * cols]
  std::vector<float> scales;   // one per row (dynamic), or a single one (static)
  float scale(int64_t row) const { return scales.size() == 1 ? scales[0] : scales[row]; }
};

// Per-token dynamic: each row's scale is its own max |x| / 127 (0 for an all-zero row).
Result<Int8Activations> quantize_activation_int8_dynamic(const float* x, int64_t n, int64_t cols);
// Static: one given scale for every row (values beyond 127 * scale saturate).
Result<Int8Activations> quantize_activation_int8_static(const float* x, int64_t n, int64_t cols, float scale);
std::vector<float> dequantize_activations(const Int8Activations& a);

// y[n][w.rows] = a.scale(i) * w.scale(r) * sum_k a.q[i][k] * w.codes[r][k] (int32 sums). w must be 8-bit
// symmetric with kTensor or kChannel granularity and w.cols == a.cols.
Result<std::vector<float>> gemm_w8a8(const Int8Activations& a, const AffineTensor& w);

}  // namespace llmopt::quant
