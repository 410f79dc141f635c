// Quantization on the grids that standard GGUF blocks represent exactly, so that RTN, GPTQ and AWQ
// results can be written as Q4_0 / Q4_1 / Q8_0 tensors that llmopt and llama.cpp run with their
// existing kernels, without any loss between the quantizer's values and the file's values.
//
// Grids (one group shares d and m; both are fp16 values, rounded to fp16 BEFORE any code is chosen):
//   kQ4_0 (4-bit symmetric):  value = d * q,       q in [-8, 7]   (stored as the nibble q + 8)
//   kQ4_1 (4-bit asymmetric): value = d * q + m,   q in [0, 15]
//   kQ8_0 (8-bit symmetric):  value = d * q,       q in [-127, 127]
// 8-bit asymmetric has no GGUF block and is refused (grid_for).
//
// Groups: every group is a run of `group_size` consecutive input columns of one row (32, 64, 128,
// ...), or a whole row (group_size 0 = per output channel). GGUF blocks hold 32 elements, so a group
// longer than 32 is written as the same block type with the group's d (and m) repeated in every
// 32-block of the group. That is exact (each block dequantizes to the group's values); the storage
// is that of the block type (e.g. 4.5 bits per weight for Q4_0 whatever the group size).
//
// Group parameters (clip ratio r in (0, 1], 1 = no clipping):
//   kQ4_0: like llama.cpp, the element with the largest magnitude, mx (signed), maps to code -8:
//          d = fp16(r * mx / -8) (d may be negative);
//   kQ4_1: d = fp16(r * (max - min) / 15), m = fp16(r * min);
//   kQ8_0: d = fp16(r * max|w| / 127).
//   code = clamp(round_half_even((w - m) / d)) (d == 0: code 0, or for kQ4_1 the value m).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"

namespace llmopt::quant {

enum class GridType { kQ4_0, kQ4_1, kQ8_0 };

// The grid of (bits, symmetric): 4 sym -> Q4_0, 4 asym -> Q4_1, 8 sym -> Q8_0; anything else is an
// error with the reason.
Result<GridType> grid_for(int bits, bool symmetric);
DType grid_dtype(GridType t);
const char* grid_name(GridType t);
int32_t grid_code_min(GridType t);
int32_t grid_code_max(GridType t);

struct GridParams {
  float d = 0.0f;  // an fp16 value
  float m = 0.0f;  // an fp16 value; 0 for the symmetric grids
};

GridParams grid_group_params(GridType t, const float* w, int64_t n, float clip_ratio = 1.0f);
// The clip ratio r in {1, 1 - kGridClipStep, ..., 0.5} whose parameters minimize
// sum_i importance_i * (w_i - value_i)^2 (importance null: all 1; ties keep the larger r).
constexpr int kGridClipSteps = 25;
constexpr float kGridClipStep = 0.02f;
GridParams grid_search_group_params(GridType t, const float* w, int64_t n, const float* importance);
int32_t grid_quantize_value(float w, GridParams p, GridType t);
// The value of a code, computed exactly like the block dequantizers of the kernels.
inline float grid_value(int32_t q, GridParams p, GridType t) {
  return t == GridType::kQ4_1 ? static_cast<float>(q) * p.d + p.m : static_cast<float>(q) * p.d;
}

struct GridSpec {
  GridType type = GridType::kQ4_0;
  int64_t group_size = 32;  // a multiple of 32; 0: one group per row (per output channel)
};

// Ok if a [rows][cols] matrix can be quantized with spec: cols a multiple of 32 and of the group size.
Status validate_grid(const GridSpec& spec, int64_t rows, int64_t cols);

// A matrix on a grid: codes (unpacked, in the grid's code range) and one GridParams per group.
struct GridTensor {
  GridSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int16_t> codes;       // [rows * cols]
  std::vector<GridParams> params;   // [rows * groups_per_row]

  int64_t group_len() const { return spec.group_size == 0 ? cols : spec.group_size; }
  int64_t groups_per_row() const { return cols / group_len(); }
  GridParams params_of(int64_t r, int64_t c) const { return params[r * groups_per_row() + c / group_len()]; }
  // The GGUF blocks of grid_dtype(spec.type), row after row: rows * cols / 32 blocks.
  std::vector<uint8_t> pack() const;
  // The values grid_value gives (equal, bit for bit, to dequantizing pack() with the kernels).
  std::vector<float> dequantize() const;
};

// The llmopt extension q4_1_g128 (docs/FORMATS.md) for a kQ4_1 tensor whose groups are 128 elements or
// whole rows of a multiple of 128: one (d, m) per 128 elements, the same values as pack()'s Q4_1 blocks
// (CHECKed preconditions; quantize --compact checks them first).
std::vector<uint8_t> pack_q4_1_g128(const GridTensor& t);

// Round-to-nearest on the grid; clip_ratios (optional): one per group, rows * groups_per_row.
Result<GridTensor> grid_quantize_rtn(const float* w, int64_t rows, int64_t cols, const GridSpec& spec,
                                     const std::vector<float>* clip_ratios = nullptr);

struct GridGptqOptions {
  double damp_percent = 0.01;
  int block_size = 128;  // rounded up to a multiple of the group size
  bool act_order = false;  // columns by descending Hessian diagonal, with static group parameters
  // Each group's parameters from grid_search_group_params (its columns' errors weighted by 1 / U_jj^2,
  // as GPTQ's objective weighs them) instead of the full range. Measured at 4 bits on TinyStories-656K
  // and stories260K: 6-9% lower KL divergence against the original, but perplexity moves either way
  // (docs/BENCHMARKS.md), so it is opt-in (quantize --scale-search).
  bool scale_search = false;
  ThreadPool* pool = nullptr;
};

// GPTQ (see gptq.h) with every column quantized on the grid. Without act-order, per-group parameters
// are computed from the error-updated weights when the loop reaches the group's first column; with
// act-order every group's parameters are computed before the loop from its original columns ("static
// groups", as gptq.h); per-channel parameters always once from the original row. Either way by the
// scale search when options.scale_search is set. h: [cols][cols] from HessianAccumulator.
Result<GridTensor> grid_quantize_gptq(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                      const GridSpec& spec, const GridGptqOptions& options = {});

// AWQ (see awq.h) with the grid as the quantizer, so the search measures the very values that are
// written: for alpha in {0, 1/grid, ..., 1}, s = max(mean|x|^alpha, 1e-4) / sqrt(max(s) min(s)) and
// error = ||x w^T - x (deq(RTN_grid(w s)) / s)^T||^2; alpha = 0 is plain RTN on the grid. Then, per group,
// clipping ratios 1, 1 - clip_step, ..., min_clip (kept only if the whole error drops). `quantized`
// holds Q(w · diag(s)): the caller folds 1/s into what produces x.
struct GridAwqOptions {
  int grid = 20;
  // When set, the scale search ranks the alphas by this error of the effective weights
  // deq(RTN_grid(w s)) / s [rows][cols] instead of ||x w^T - x w_eff^T||^2: the caller measures the
  // output of the module the layer feeds (AWQ's block output). The clipping search stays per layer.
  std::function<Result<double>(const std::vector<float>& w_eff)> scale_error;
  bool scale_search = true;  // false: s = 1 (only the clipping search), for inputs 1/s cannot be folded into
  bool clip_search = true;
  float clip_step = 0.05f;
  float min_clip = 0.5f;
  ThreadPool* pool = nullptr;
};

struct GridAwqResult {
  std::vector<float> scales;  // s [cols]
  float alpha = 0.0f;
  GridTensor quantized;
  double output_error = 0.0;  // on the calibration rows (by scale_error when given)
  double rtn_error = 0.0;     // plain RTN on the grid, for comparison (the same measure)
  bool by_scale_error = false;  // the two errors above are options.scale_error's
};

Result<GridAwqResult> grid_quantize_awq(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n,
                                        const GridSpec& spec, const GridAwqOptions& options = {});

}  // namespace llmopt::quant
