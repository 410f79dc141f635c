// The --method path of `llmopt quantize`: RTN, GPTQ or AWQ per linear weight, on grids that GGUF's
// Q4_0 / Q4_1 / Q8_0 blocks represent exactly, or W8A8 (RTN / GPTQ / SmoothQuant weights as the
// extension type i8_ch, int8 activations per token or with calibrated static scales), with
// calibration inputs captured layer by layer.
#pragma once

#include <string>

#include "model/model.h"

namespace llmopt::cli {

struct MethodArgs {
  std::string method;          // rtn, gptq, awq or smoothquant
  int bits = 0;                // 0: the method's default (8 for smoothquant and --act, else 4)
  std::string granularity;     // "": channel for W8A8, else group
  int group_size = 32;
  bool asym = false;
  bool sym = false;
  std::string calib;
  int calib_samples = 32;
  int calib_seq_len = 128;
  std::string act;             // "", dynamic or static: W8A8 (int8 activations at run time)
  float sq_alpha = -1.0f;      // smoothquant: migration strength; < 0: searched per input
  bool act_order = false;      // gptq: columns by descending Hessian diagonal
  bool scale_search = false;   // gptq on a grid: search each group's clipping ratio
  // gptq on a grid: inputs captured once per layer and the layer's own outputs on them as the target
  // (the paper's setup) instead of per linear group with the unquantized model's outputs as the target.
  bool gptq_per_layer = false;
  // awq: what the scale search minimizes: "block" (the output of the attention / MLP module the layer
  // feeds) or "layer" (the layer's own output); "" until plan_method resolves it (block).
  std::string awq_objective;
  int tune_steps = 0;          // grids: end-to-end tuning of the group parameters (train/qtune.h)
  float tune_lr = 3e-3f;
  bool tune_codes = false;     // --tune-steps also learns each weight's rounding
  int tune_batch = 4;
  int tune_holdout = 0;        // --tune-steps: calibration windows held out for early stopping
  bool smooth_only = false;    // smoothquant: write the smoothed model in f32, nothing rounded
  bool rotate = false;         // W8A8: rotate inputs where that lowers the output error (kernels/rotate.h)
  std::string sq_weights = "rtn";  // smoothquant: how the smoothed weights are rounded (rtn or gptq)
  bool compact = false;        // 4-bit asym g128 / channel as the extension q4_1_g128 (4.25 bpw)
  std::string embed_type;      // token_embd / output written as this type ("": as in the input; W8A8: i8_ch)
};

// Returns the process exit code (errors are printed as one "error:" line).
int run_quantize_method(const std::string& input, const std::string& output, const std::string& keep_re,
                        const std::string& tokenizer_path, int threads, const MethodArgs& a);

// Weight bytes * 8 / weight elements.
double bits_per_weight(const Model& m);

}  // namespace llmopt::cli
