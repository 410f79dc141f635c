// The whole public face of the kernels layer: type conversion (dequantize / quantize rows),
// matrix products against weights of any supported type, and the elementwise ops of a transformer.
// Every kernel has a plain scalar reference in kernels/ref/; faster ISA-specific versions may
// replace entries at run time, and tests compare them against the reference.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace llmopt::kernels {

// ---- instruction set selection -----------------------------------------------------------------
// Matrix products run on the best kernels the CPU supports, chosen once at first use; the
// environment variable LLMOPT_ISA=ref|avx2|avx512|amx (read once, at first use) or set_isa() overrides.
// Weight types without a fast kernel on the chosen ISA use the scalar reference.
enum class Isa { kRef = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };
// True if this build has kernels for isa and this CPU can run them (kRef: always).
bool isa_supported(Isa isa);
// Selects the kernels used from now on. An ISA the CPU lacks falls back (with a warning) to the best
// supported one below it. Must not race with running matmuls.
void set_isa(Isa isa);
Isa active_isa();
const char* isa_name(Isa isa);
inline const char* isa_name() { return isa_name(active_isa()); }

// ---- type conversion -------------------------------------------------------------------------
// True if rows of this type can be turned into f32 (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K, Q6_K and the extension q4_1_g128; not i8_ch, whose scales live in the view).
bool can_dequantize(DType t);
// dst[0..n) = value of the n elements at src (n a multiple of the block size; CHECKed).
void dequantize_row(DType t, const void* src, float* dst, int64_t n);
// Row r of a 2-D weight view as f32: dequantize_row, or for kI8Ch (whose row scales live in the view)
// scale[r] * code.
void dequantize_view_row(const TensorView& w, int64_t r, float* dst);
// True if f32 rows can be written as this type (F32, F16, BF16, and with llama.cpp's reference
// round-to-nearest quantizers, bit-exact: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K).
bool can_quantize(DType t);
// Writes n elements of src as type t into dst (dtype_row_bytes(t, n) bytes).
void quantize_row(DType t, const float* src, void* dst, int64_t n);

// ---- matrix products -------------------------------------------------------------------------
// y[m][n_out] = sum_k x[m][k] * W[n_out][k]   (W is [n_out, n_in] in any dequantizable type;
// x and y are f32 row-major; y is overwritten). Work is split over output rows on the pool.
void matmul(const TensorView& w, const float* x, int64_t m, float* y, ThreadPool& pool);
// Same, plus bias b[n_out] (f32) added to every row when b != nullptr.
void matmul_bias(const TensorView& w, const float* bias, const float* x, int64_t m, float* y, ThreadPool& pool);
// Several products of one input (Q, K and V; gate and up): y_j = x . W_j^T (+ b_j), each exactly as
// matmul_bias computes it, but with x quantized once and one hand-off to the pool for all of them.
// The weights must have the same row length.
// A job's epilogue runs on each thread's output rows right after it computes them (while they are in
// cache), with exactly the results of a separate pass afterwards: kGelu, gelu_inplace of the job's
// output; kSwiGluPrev (only on the second of two jobs with the same number of rows: gate, then up),
// the first job's output becomes swiglu(gate, up), as swiglu(gate, up, gate, n) computes it, each
// thread's row range as soon as both products of it are done.
enum class Epilogue { kNone, kGelu, kSwiGluPrev };
struct MatmulJob {
  const TensorView* w;
  const float* bias;  // or nullptr
  float* y;
  Epilogue post = Epilogue::kNone;
};
void matmul_multi(std::span<const MatmulJob> jobs, const float* x, int64_t m, ThreadPool& pool);
// The normalization of every input row before the products: LayerNorm (layer, with bias b or none)
// or RMSNorm, as layer_norm / rms_norm compute them.
struct RowNorm {
  bool layer = false;
  const float* w = nullptr;
  const float* b = nullptr;
  float eps = 0.0f;
};
// matmul_multi of h = norm(x) [m][k]. Where every weight reads int8 activation blocks, each row is
// normalized and quantized in one pass (over the pool for long inputs) and h is not written;
// otherwise h receives the normalized rows, which then go to matmul_multi. Same results either way.
void matmul_multi_normed(std::span<const MatmulJob> jobs, const float* x, int64_t m, const RowNorm& norm, float* h,
                         ThreadPool& pool);
// Dot product of two f32 vectors.
float dot_f32(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);
// One step of flash-style attention (online softmax) over one chunk of at most kAttnChunk keys.
// The queries are n_tok tokens x group heads (the heads that share one KV head: GQA); query row
// r = t * group + i is q[t * q_stride + i * hd ...], its output row o[t * o_stride + i * hd ...], and
// token t sees the first n_vis[t] of the n keys (causal masking; 0: none). k, v: n rows of hd
// elements, `stride` elements apart, f32 or (kv_f16) f16. State per query row: running max m[r]
// (start -inf), running sum l[r] (start 0) and unnormalised output (start 0). With s_j = scale (q . k_j)
// over the visible keys and M = max(m, max_j s_j): c = exp(m - M), l = l c + sum_j exp(s_j - M),
// o = o c + sum_j exp(s_j - M) v_j, m = M. After the last chunk the attention output is o / l.
// A query row's result does not depend on the other rows of the call (batch invariance).
constexpr int32_t kAttnChunk = 16;
constexpr int32_t kAttnMaxRows = 64;  // n_tok * group at most
struct AttnQueries {
  const float* q = nullptr;
  int64_t q_stride = 0;
  float* o = nullptr;
  int64_t o_stride = 0;
  int32_t n_tok = 0, group = 0;
  const int32_t* n_vis = nullptr;  // [n_tok]
  float* m = nullptr;              // [n_tok * group]
  float* l = nullptr;              // [n_tok * group]
};
void attn_block(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                int64_t stride, int32_t n);

// ---- elementwise / row ops (all f32, in place where the name says so) ---------------------------
// out = x / sqrt(mean(x^2) + eps) * w
void rms_norm(const float* x, const float* w, float eps, float* out, int64_t n);
// out = (x - mean) / sqrt(var + eps) * w + b   (b may be nullptr)
void layer_norm(const float* x, const float* w, const float* b, float eps, float* out, int64_t n);
// GPT-2's GELU (tanh approximation), in place.
void gelu_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i]   (SwiGLU); out may be gate or up (element i is read before it is written)
void swiglu(const float* gate, const float* up, float* out, int64_t n);
// In-place softmax over n values; returns nothing. Numerically stable (subtracts the max).
void softmax_inplace(float* x, int64_t n);
// y[i] += x[i]
void add_inplace(float* y, const float* x, int64_t n);

// RoPE on one head vector of length head_dim at position pos, rotating the first n_rot dims.
// Adjacent layout (GGUF llama, llama2.c): pairs (2i, 2i+1). NeoX / rotate-half layout (HF): pairs
// (i, i + n_rot/2). theta_i = pos * base^(-2i/n_rot).
enum class RopeLayout { kAdjacent = 0, kNeox = 1 };
void rope_inplace(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, RopeLayout layout);

}  // namespace llmopt::kernels
