// SmoothQuant: channel statistics, the smoothing factors and folding them into producer and weights.
#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace llmopt::quant {

void update_channel_abs_max(const float* m, int64_t n, int64_t cols, std::vector<float>& abs_max) {
  if (abs_max.size() != static_cast<size_t>(cols)) abs_max.assign(static_cast<size_t>(cols), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < cols; ++j) abs_max[j] = std::max(abs_max[j], std::fabs(m[i * cols + j]));
  }
}

Result<std::vector<float>> smoothing_scales(const std::vector<float>& act_abs_max,
                                            const std::vector<float>& weight_abs_max, float alpha) {
  if (!(alpha >= 0.0f && alpha <= 1.0f)) {
    return error("smoothing alpha " + std::to_string(alpha) + " not in [0, 1]");
  }
  if (act_abs_max.empty()) return error("empty calibration: no activation statistics for smoothing");
  if (act_abs_max.size() != weight_abs_max.size()) {
    return error("activation statistics have " + std::to_string(act_abs_max.size()) +
                 " channels but weight statistics have " + std::to_string(weight_abs_max.size()));
  }
  std::vector<float> s(act_abs_max.size());
  for (size_t j = 0; j < s.size(); ++j) {
    const float a = act_abs_max[j], w = weight_abs_max[j];
    if (!(a >= 0.0f) || !std::isfinite(a) || !(w >= 0.0f) || !std::isfinite(w)) {
      return error("bad channel statistic at channel " + std::to_string(j) + " (activation " + std::to_string(a) +
                   ", weight " + std::to_string(w) + ")");
    }
    const double v = std::pow(std::max(static_cast<double>(a), 1e-5), alpha) /
                     std::pow(std::max(static_cast<double>(w), 1e-5), 1.0 - alpha);
    s[j] = static_cast<float>(std::max(v, 1e-5));
  }
  return s;
}

Status apply_smoothing(const std::vector<float>& s, std::vector<float>& producer, std::vector<float>* producer_bias,
                       const std::vector<MatrixRef>& weights) {
  const size_t n = s.size();
  if (n == 0) return error("empty smoothing factors");
  if (producer.size() != n) {
    return error("producer has " + std::to_string(producer.size()) + " channels, smoothing factors " +
                 std::to_string(n));
  }
  if (producer_bias != nullptr && producer_bias->size() != n) {
    return error("producer bias has " + std::to_string(producer_bias->size()) + " channels, smoothing factors " +
                 std::to_string(n));
  }
  for (size_t j = 0; j < n; ++j) {
    if (!(s[j] > 0.0f) || !std::isfinite(s[j])) {
      return error("smoothing factor " + std::to_string(j) + " is " + std::to_string(s[j]) + " (must be > 0)");
    }
  }
  for (const MatrixRef& m : weights) {
    if (m.data == nullptr || m.cols != static_cast<int64_t>(n) || m.rows < 0) {
      return error("weight matrix with " + std::to_string(m.cols) + " input columns does not match " +
                   std::to_string(n) + " smoothing factors");
    }
  }
  for (size_t j = 0; j < n; ++j) {
    producer[j] /= s[j];
    if (producer_bias != nullptr) (*producer_bias)[j] /= s[j];
  }
  for (const MatrixRef& m : weights) {
    for (int64_t r = 0; r < m.rows; ++r) {
      for (int64_t c = 0; c < m.cols; ++c) m.data[r * m.cols + c] *= s[c];
    }
  }
  return ok_status();
}

}  // namespace llmopt::quant
