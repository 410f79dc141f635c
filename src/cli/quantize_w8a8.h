// The W8A8 branch of `llmopt quantize --method`: int8 weights with one scale per output row (or one
// per tensor) written as the extension type i8_ch, activations quantized to int8 at run time per token
// (--act dynamic) or with a calibrated per-tensor scale (--act static), and SmoothQuant's migration of
// activation outliers into the weights (--method smoothquant). The pipeline that calls these (layers in
// sequence on calibration inputs) is in quantize_method.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"

namespace llmopt::cli {

struct W8A8Spec {
  bool per_tensor = false;  // one weight scale for the whole matrix instead of one per row
  bool gptq = false;        // GPTQ instead of round-to-nearest (needs the input's Hessian)
  bool act_order = false;   // GPTQ: visit columns by descending Hessian diagonal
};

// An i8_ch weight: codes [rows][cols] in [-127, 127] and one scale per row.
struct I8ChWeight {
  std::vector<int8_t> codes;
  std::vector<float> row_scale;
  float act_scale = 0.0f;  // static activation scale; 0 = per token
  std::vector<float> rot;  // the input rotation's Q [rot_m][rot_m] (kernels/rotate.h); empty: none
  int64_t rot_m = 0;
};

// SmoothQuant's s for one input shared by the weights ws (each [rows_i][cols], f32), from the captured
// input rows x [n_x][cols]: s_j = max|X_j|^alpha / max|W_j|^(1-alpha) (quant/smoothquant.h).
Result<std::vector<float>> smoothing_for(const std::vector<std::pair<const float*, int64_t>>& ws, const float* x,
                                         int64_t n_x, int64_t cols, float alpha);

// SmoothQuant's choice for one input: the migration strength alpha (searched on a grid of 0, 0.05, ...,
// 1, and no smoothing at all, unless alpha is given) and, for static activations, the clipping of the activation range (1, 0.9, ..., 0.5
// of max|x|), picked to minimize || X W^T - Qa(X / s) Qw(W diag(s))^T ||^2 over the captured rows
// (at most 512 of them), with Qw per-row (or per-tensor) int8 RTN and Qa the run-time activation
// quantization. can_smooth = false (nothing to fold 1/s into) searches the clipping only (s = 1).
struct SmoothChoice {
  std::vector<float> s;     // empty: no smoothing
  float alpha = 0.0f;
  float act_clip = 1.0f;    // static: act_scale = act_clip * max|X / s| / 127
  bool static_act = true;   // false: per-token scales (what --act auto chose for this input)
  bool rotated = false;     // the input is rotated (SmoothSearch::rot; only searched when given)
  double error = 0.0;       // the chosen output error
  double error_plain = 0.0; // the same without smoothing and clipping
};
struct SmoothSearch {
  bool can_smooth = true;
  bool static_act = true;
  bool per_tensor = false;
  float alpha = -1.0f;      // >= 0: fixed, not searched
  const float* rot = nullptr;  // the input is rotated by R (Q [rot_m][rot_m]) after smoothing
  int64_t rot_m = 0;
};
Result<SmoothChoice> search_smoothing(const std::vector<std::pair<const float*, int64_t>>& ws,
                                      const std::vector<float>& x, int64_t cols, const SmoothSearch& opt,
                                      ThreadPool& pool);

// Divides column j of the captured inputs by s_j (what the layer sees once 1/s is folded upstream).
void divide_columns(std::vector<float>& x, int64_t cols, const std::vector<float>& s);

// The static activation scale of an input: clip * max |x| / 127 over the captured rows (an error when
// they are all zero, non-finite or absent).
Result<float> static_act_scale(const std::vector<float>& x, float clip = 1.0f);

// Quantizes w [rows][cols] to symmetric int8 (h: the input's Hessian [cols][cols] for GPTQ, else
// unused) and writes the quantized values back into w.
Result<I8ChWeight> quantize_i8ch(float* w, int64_t rows, int64_t cols, const W8A8Spec& spec,
                                 const std::vector<float>* h, ThreadPool* pool);

}  // namespace llmopt::cli
