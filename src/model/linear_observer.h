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
  // The residual stream rows entering block il (x [n_rows][n_embd], before the block's norm), called
  // before each block runs.
  virtual void on_block_input(int32_t /*il*/, const float* /*x*/, int64_t /*n_rows*/, int64_t /*n_embd*/) {}
  // A pass may start at block first_layer() > 0 instead of the embeddings: load_residual then writes
  // the residual stream rows entering that block (as on_block_input saw them in an earlier pass of the
  // same tokens); the blocks before it do not run (nor write their KV).
  virtual int32_t first_layer() const { return 0; }
  virtual void load_residual(int32_t /*il*/, float* /*x*/, int64_t /*n_rows*/, int64_t /*n_embd*/) {}
};

}  // namespace llmopt
