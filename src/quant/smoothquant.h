// SmoothQuant (Xiao et al., 2022): migrates activation outliers into the weights with a per-input-channel
// factor s, so that both become easy to quantize to 8 bits:
//     y = (x ⊙ g) W^T = (x ⊙ g / s) (W diag(s))^T
// where g is the per-channel multiplier of whatever produces x (e.g. an RMSNorm/LayerNorm weight).
//   s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)
// with max|X_j| over the calibration activations (the input of the linear layers) and max|W_j| over the
// column j of every linear layer reading that input (e.g. Q, K and V together).
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant {

// Running per-channel max |value| over rows of a [n][cols] matrix (activations or weights); the vector
// is sized to cols (zeros) on first use.
void update_channel_abs_max(const float* m, int64_t n, int64_t cols, std::vector<float>& abs_max);

// s_j = max(act_j, 1e-5)^alpha / max(weight_j, 1e-5)^(1 - alpha), clamped to >= 1e-5.
// Errors: alpha outside [0, 1], empty or mismatched vectors, negative or non-finite maxima.
Result<std::vector<float>> smoothing_scales(const std::vector<float>& act_abs_max,
                                            const std::vector<float>& weight_abs_max, float alpha);

// A weight matrix [rows][cols] to rescale in place.
struct MatrixRef {
  float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// Folds s in: producer[j] /= s_j (and producer_bias[j] /= s_j when given, e.g. LayerNorm's bias), and
// column j of every weight matrix *= s_j. Errors on size mismatches or non-positive scales (nothing is
// changed then).
Status apply_smoothing(const std::vector<float>& s, std::vector<float>& producer, std::vector<float>* producer_bias,
                       const std::vector<MatrixRef>& weights);

}  // namespace llmopt::quant
