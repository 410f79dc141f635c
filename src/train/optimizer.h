// AdamW with decoupled weight decay, the learning-rate schedule (linear warm-up, then cosine decay to
// a fraction of the peak) and global gradient-norm clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "train/params.h"

namespace llmopt::train {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  // Applied only to tensors with ParamTensor::decay (projection matrices; not norms, biases or
  // embeddings).
  float weight_decay = 0.1f;
};

// The AdamW moments of every parameter (same layout as the parameters).
struct AdamWState {
  std::vector<float> m, v;
  int64_t t = 0;  // updates applied so far
};

// One update with learning rate lr (PyTorch's AdamW order): t += 1; for each element
//   m = β1 m + (1-β1) g;  v = β2 v + (1-β2) g²;
//   p *= 1 - lr·wd (decayed tensors only);  p -= lr · (m / (1-β1^t)) / (sqrt(v / (1-β2^t)) + eps).
void adamw_update(const ParamLayout& layout, const AdamWConfig& cfg, float lr, const float* grad,
                  float* params, AdamWState& state);

struct LrSchedule {
  float peak = 1e-3f;
  int64_t warmup = 0;      // steps of linear warm-up
  int64_t total = 1;       // total steps of the run
  float min_ratio = 0.1f;  // the cosine ends at min_ratio · peak

  // Learning rate of step s (0-based): peak · (s + 1) / warmup while s < warmup; afterwards
  // min + (peak - min) · (1 + cos(π · p)) / 2 with p = (s - warmup) / max(1, total - warmup), clamped
  // to [0, 1].
  float at(int64_t step) const;
};

// Scales grad in place so its global L2 norm is at most max_norm (no-op when max_norm <= 0 or the
// norm is smaller): factor max_norm / (norm + 1e-6), as PyTorch's clip_grad_norm_. Returns the norm
// before clipping (accumulated in double).
double clip_grad_norm(float* grad, size_t n, double max_norm);

}  // namespace llmopt::train
