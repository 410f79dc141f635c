// Internal to the kernels layer: the table of ISA-specific kernels that dispatch.cc fills once from
// the CPU's features (or LLMOPT_ISA / set_isa), and the plain-pointer interface those kernels share.
// ISA translation units (x86/avx2.cc, x86/avx512.cc) see only raw pointers and sizes, no STL types,
// so nothing compiled with wider-ISA flags can leak into code the linker shares with other files.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {

// One matmul call, y[m][n_out] = x . W^T (+ bias), as seen by a row kernel.
struct MatmulArgs {
  const uint8_t* w = nullptr;  // [n_out] rows of w_row_bytes bytes, any alignment
  size_t w_row_bytes = 0;
  const uint8_t* w_row(int64_t r) const { return w + static_cast<size_t>(r) * w_row_bytes; }
  int64_t n_out = 0;
  int64_t k = 0;
  int64_t m = 0;
  const float* x = nullptr;        // [m][k] f32 activations (float weight types)
  const BlockQ8Act* xq = nullptr;  // [m][k / 32] quantized activations (block weight types)
  // The same, interleaved by 8 rows ([ceil(m / 8)][k / 32]), for batches of kMinInterleaveRows rows or more.
  const BlockQ8x8* xq8 = nullptr;
  // Names the activations of this product (a new number for each product of kMinInterleaveRows rows
  // or more, and of f32 activations of 2 rows or more; 0: unnamed), so that a kernel that repacks them
  // for itself (the AMX tiles, the regrouped float tiles) does it once per product rather than once per
  // row range.
  uint64_t xq8_id = 0;
  // DType::kI8Ch: activation codes [m][k_pad] (k_pad = k rounded up to 32, zero-padded), one scale per
  // activation row, one scale per weight row.
  const int8_t* xi8 = nullptr;
  int64_t k_pad = 0;
  const float* x_scale = nullptr;
  const float* w_scale = nullptr;
  // For batches of kMinInterleaveRows rows or more: the codes interleaved by 8 rows, [ceil(m / 8)]
  // [k_pad / 32][8 groups of 4][8 rows][4], and the scales padded to whole groups (0 past m).
  const int8_t* xi8x8 = nullptr;
  const float* x_scale8 = nullptr;
  const float* bias = nullptr;     // [n_out] or nullptr
  float* y = nullptr;              // [m][n_out]
};

// Computes y[i][r] for all i < m and r in [r0, r1). Results do not depend on r0, r1.
using MatmulRowsFn = void (*)(const MatmulArgs& a, int64_t r0, int64_t r1);
// f32 row -> BlockQ8Act, bit-identical to ref::quantize_row_q8_act.
using QuantizeActFn = void (*)(const float* src, BlockQ8Act* dst, int64_t n);

// Which form of the activations a row kernel reads.
enum class ActForm { kF32, kQ8Blocks, kI8Rows };

struct MatmulKernel {
  MatmulRowsFn rows = nullptr;  // nullptr: no fast kernel for this weight type
  ActForm act = ActForm::kF32;  // kQ8Blocks: MatmulArgs::xq; kI8Rows: xi8 / x_scale / w_scale
  // Row ranges handed to `rows` start at multiples of this (weights stored in groups of rows:
  // kQ8_0R16, kQ4_0R16, kQ4_1R16); kMatmulRowAlign when smaller.
  int64_t row_align = 0;
  // kQ8Blocks kernels that never read MatmulArgs::xq8 (the regrouped layouts pack xq themselves):
  // a product made only of such kernels skips the interleaving.
  bool row_major_only = false;
};

struct IsaKernels {
  Isa isa;
  QuantizeActFn quantize_act;
  MatmulKernel (*find_matmul)(DType t);
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
  void (*attn_block)(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                     int64_t stride, int32_t n);
  void (*gelu_inplace)(float* x, int64_t n);
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n);
  void (*softmax_inplace)(float* x, int64_t n);
  void (*rms_norm)(const float* x, const float* w, float eps, float* out, int64_t n);
  void (*layer_norm)(const float* x, const float* w, const float* b, float eps, float* out, int64_t n);
  void (*f32_to_f16_row)(const float* src, void* dst, int64_t n);  // bit-identical to fp32_to_fp16; dst: any alignment
  // kI8Ch activations: bit-identical to ref::quantize_act_i8.
  float (*quantize_act_i8)(const float* x, int64_t n, float static_scale, int8_t* q);
};

// The kernels selected now, or nullptr when the reference path is selected.
const IsaKernels* active_isa_kernels();

// Row kernels hand out work in multiples of this many output rows.
constexpr int64_t kMatmulRowAlign = 4;
// Batches of at least this many rows also get their Q8 activation blocks interleaved (MatmulArgs::xq8).
constexpr int64_t kMinInterleaveRows = 5;
// Matmuls smaller than this many multiply-adds run on the calling thread alone.
constexpr int64_t kMinParallelMacs = int64_t{1} << 18;

// Entry points of the ISA translation units.
namespace avx2 {
const IsaKernels& kernels();
}
namespace avx512 {
const IsaKernels& kernels();
}
namespace amx {
bool usable();  // the CPU has AMX-TILE and AMX-INT8 and the OS granted this process their state
const IsaKernels& kernels();
}

}  // namespace llmopt::kernels
