// AdamW, the warm-up + cosine schedule and gradient clipping (see optimizer.h).
#include "train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/check.h"

namespace llmopt::train {

void adamw_update(const ParamLayout& layout, const AdamWConfig& cfg, float lr, const float* grad,
                  float* params, AdamWState& state) {
  LLMOPT_CHECK(state.m.size() == layout.total && state.v.size() == layout.total);
  state.t += 1;
  const double t = static_cast<double>(state.t);
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(cfg.beta1), t));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(cfg.beta2), t));
  const float b1 = cfg.beta1, b2 = cfg.beta2;
  for (const ParamTensor& pt : layout.tensors) {
    const float decay = pt.decay ? 1.0f - lr * cfg.weight_decay : 1.0f;
    float* p = params + pt.offset;
    const float* g = grad + pt.offset;
    float* m = state.m.data() + pt.offset;
    float* v = state.v.data() + pt.offset;
    for (int64_t i = 0; i < pt.numel; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      const float mhat = m[i] / bc1;
      const float vhat = v[i] / bc2;
      p[i] = p[i] * decay - lr * mhat / (std::sqrt(vhat) + cfg.eps);
    }
  }
}

float LrSchedule::at(int64_t step) const {
  if (step < warmup) return peak * static_cast<float>(step + 1) / static_cast<float>(warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, total - warmup));
  const double p = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  const double lo = static_cast<double>(peak) * min_ratio;
  const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  return static_cast<float>(lo + (static_cast<double>(peak) - lo) * cosine);
}

double clip_grad_norm(float* grad, size_t n, double max_norm) {
  double sq = 0.0;
  for (size_t i = 0; i < n; ++i) sq += static_cast<double>(grad[i]) * grad[i];
  const double norm = std::sqrt(sq);
  if (max_norm > 0.0 && norm > max_norm) {
    const float f = static_cast<float>(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < n; ++i) grad[i] *= f;
  }
  return norm;
}

}  // namespace llmopt::train
