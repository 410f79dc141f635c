// An optional observer of every linear layer's input during a forward pass (calibration for GPTQ and
// AWQ). Model::forward without an observer pays one null check per linear layer.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace llmopt {

class LinearObserver {
 public:
  virtual ~LinearObserver() = default;
  // x [n_rows][weight.cols()]: the input rows about to be multiplied by `weight` (a view of the
  // model's own tensor, so weight.data identifies it). Called on the forward pass's thread.
  virtual void on_linear_input(const TensorView& weight, const float* x, int64_t n_rows) = 0;
  // False once nothing at or after block il interests the observer: the forward pass then stops before
  // block il (its logits are left unset; calibration passes that capture one layer's inputs use this).
  virtual bool needs_layer(int32_t /*il*/) const { return true; }
};

}  // namespace llmopt
