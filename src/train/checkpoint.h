// Training checkpoints: parameters, AdamW moments, the step and the data RNG state in one binary
// file, so a resumed run continues bit for bit.
//
// Layout (little-endian): "LLMTRAIN" | u32 version (1) | i32 arch, n_vocab, n_ctx_train, n_embd,
// n_layer, n_head, n_head_kv, n_ff | f32 norm_eps, rope_theta | i64 step | u64 rng state |
// i64 batch | i64 AdamW t | u64 n | f32 params[n] | f32 m[n] | f32 v[n].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "train/optimizer.h"
#include "train/params.h"

namespace llmopt::train {

struct TrainState {
  std::vector<float> params;
  AdamWState opt;
  int64_t step = 0;        // optimizer steps completed
  uint64_t rng_state = 0;  // data-order RNG
  int64_t batch = 0;       // sequences per step (a resumed run must use the same)
};

// Writes to path + ".tmp" and renames, so an interrupted save leaves the old checkpoint intact.
Status save_checkpoint(const std::string& path, const ParamLayout& layout, const TrainState& state);
// Reads a checkpoint and checks that it was made for the same model shape as `layout`.
Result<TrainState> load_checkpoint(const std::string& path, const ParamLayout& layout);

}  // namespace llmopt::train
