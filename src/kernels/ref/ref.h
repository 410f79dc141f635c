// Scalar reference kernels. These are the ground truth that faster ISA-specific kernels are tested
// against: plain loops, f32 accumulation, no intrinsics. Callers normally go through kernels.h.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {
struct MatmulArgs;
}

namespace llmopt::kernels::ref {

// ---- rows of a type -> f32 (n is a multiple of the type's block size) ----
void dequantize_row_f32(const void* src, float* dst, int64_t n);
void dequantize_row_f16(const void* src, float* dst, int64_t n);
void dequantize_row_bf16(const void* src, float* dst, int64_t n);
void dequantize_row_q8_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_0(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1(const void* src, float* dst, int64_t n);
void dequantize_row_q5_0(const void* src, float* dst, int64_t n);
void dequantize_row_q5_1(const void* src, float* dst, int64_t n);
void dequantize_row_q4_k(const void* src, float* dst, int64_t n);
void dequantize_row_q5_k(const void* src, float* dst, int64_t n);
void dequantize_row_q6_k(const void* src, float* dst, int64_t n);
void dequantize_row_q4_1_g128(const void* src, float* dst, int64_t n);

// ---- f32 -> rows of a type ----
void quantize_row_f32(const float* src, void* dst, int64_t n);
void quantize_row_f16(const float* src, void* dst, int64_t n);
void quantize_row_bf16(const float* src, void* dst, int64_t n);
// llama.cpp's reference round-to-nearest quantizers (quantize_row_*_ref), bit-exact (quantize.cc).
void quantize_row_q8_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_0(const float* src, void* dst, int64_t n);
void quantize_row_q4_1(const float* src, void* dst, int64_t n);
void quantize_row_q5_0(const float* src, void* dst, int64_t n);
void quantize_row_q5_1(const float* src, void* dst, int64_t n);
void quantize_row_q4_k(const float* src, void* dst, int64_t n);
void quantize_row_q5_k(const float* src, void* dst, int64_t n);
void quantize_row_q6_k(const float* src, void* dst, int64_t n);
// The llmopt extension q4_1_g128 (not a llama.cpp type): Q4_1's reference formula over 128 elements.
void quantize_row_q4_1_g128(const float* src, void* dst, int64_t n);

// f32 activations -> BlockQ8Act (n a multiple of 32): d = max|x| / 127, q = round-half-even(x / d).
void quantize_row_q8_act(const float* src, BlockQ8Act* dst, int64_t n);
// Inverse of the above (q * d), for tests that reproduce exactly what the integer kernels compute.
void dequantize_row_q8_act(const BlockQ8Act* src, float* dst, int64_t n);

// ---- W8A8 (DType::kI8Ch weights, i8ch.cc) ----
// Activation row -> int8 codes with one scale, returned: static_scale when > 0, else max|x| / 127
// (per token); q = clamp(round-half-even(x / scale), -127, 127); an all-zero row gets scale 0.
float quantize_act_i8(const float* x, int64_t n, float static_scale, int8_t* q);

// ---- products ----
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);
// y[m][n_out] = x[m][k] . W[n_out][k] (+ bias). See kernels::matmul_bias.
void matmul_bias(const TensorView& w, const float* bias, const float* x, int64_t m, float* y,
                 ThreadPool& pool);
// Row kernel for kI8Ch weights (MatmulArgs::xi8 form): y = float(sum of int8 products) * (w_scale *
// x_scale), or fma(float(sum), w_scale * x_scale, bias).
void matmul_rows_i8ch(const MatmulArgs& a, int64_t r0, int64_t r1);

// ---- elementwise / row ops ----
void rms_norm(const float* x, const float* w, float eps, float* out, int64_t n);
void layer_norm(const float* x, const float* w, const float* b, float eps, float* out, int64_t n);
void gelu_inplace(float* x, int64_t n);
void swiglu(const float* gate, const float* up, float* out, int64_t n);
void softmax_inplace(float* x, int64_t n);
// See kernels::attn_block.
void attn_block(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                int64_t stride, int32_t n);
void add_inplace(float* y, const float* x, int64_t n);
void rope_inplace(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, RopeLayout layout);

}  // namespace llmopt::kernels::ref
