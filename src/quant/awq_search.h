// The pieces of AWQ's searches that do not depend on the weight layout, shared by quant/awq.cc
// (affine tensors) and quant/gguf_grid.cc (GGUF block grids).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant::awq_search {

// mean |x_j| over the n calibration rows of x [n, cols], per input column j.
inline std::vector<double> column_mean_abs(const float* x, int64_t n, int64_t cols) {
  std::vector<double> mean_abs(static_cast<size_t>(cols), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < cols; ++j) mean_abs[j] += std::fabs(static_cast<double>(x[i * cols + j]));
  }
  for (double& m : mean_abs) m /= static_cast<double>(n);
  return mean_abs;
}

// The per-column scales for one alpha of the grid: s_j = max(mean|x_j|^alpha, 1e-4), divided by
// sqrt(max s * min s) so that they straddle 1.
inline void alpha_scales(const std::vector<double>& mean_abs, float alpha, std::vector<float>& s) {
  const size_t cols = mean_abs.size();
  s.resize(cols);
  float smax = 0.0f, smin = 0.0f;
  for (size_t j = 0; j < cols; ++j) {
    s[j] = std::max(static_cast<float>(std::pow(mean_abs[j], static_cast<double>(alpha))), 1e-4f);
    smax = j == 0 ? s[j] : std::max(smax, s[j]);
    smin = j == 0 ? s[j] : std::min(smin, s[j]);
  }
  const float norm = std::sqrt(smax * smin);
  for (float& v : s) v /= norm;
}

// The clipping search: every ratio of `ratios` (in order) is tried on all groups at once, and each
// group keeps the ratio with its smallest error (the earlier ratio on a tie). errors_for(ratio, err)
// fills err with one error per group, every group clipped at `ratio`, and returns a Status.
template <class ErrorsFor>
Result<std::vector<float>> best_clip_per_group(const std::vector<float>& ratios, int64_t groups,
                                               ErrorsFor&& errors_for) {
  std::vector<float> clips(static_cast<size_t>(groups), ratios.empty() ? 1.0f : ratios.front());
  std::vector<double> best_err, err;
  for (float ratio : ratios) {
    LLMOPT_RETURN_IF_ERROR(errors_for(ratio, err));
    if (best_err.empty()) {
      best_err = err;
      continue;
    }
    for (int64_t g = 0; g < groups; ++g) {
      if (err[g] < best_err[g]) {
        best_err[g] = err[g];
        clips[g] = ratio;
      }
    }
  }
  return clips;
}

}  // namespace llmopt::quant::awq_search
