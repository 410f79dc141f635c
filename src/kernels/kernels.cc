// Public entry points of the kernels layer (kernels.h). Argument invariants are checked here once;
// the work is done by the reference kernels in ref/ through the dtype-traits table.
#include "kernels/kernels.h"

#include "core/check.h"
#include "kernels/ref/ref.h"
#include "kernels/type_traits.h"

namespace llmopt::kernels {

bool can_dequantize(DType t) {
  const TypeTraits* tr = find_type_traits(t);
  return tr != nullptr && tr->dequantize_row != nullptr;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const TypeTraits* tr = find_type_traits(t);
  LLMOPT_CHECK_MSG(tr != nullptr && tr->dequantize_row != nullptr, dtype_name(t));
  LLMOPT_CHECK(n >= 0 && n % dtype_info(t).block_size == 0);
  tr->dequantize_row(src, dst, n);
}

bool can_quantize(DType t) {
  const TypeTraits* tr = find_type_traits(t);
  return tr != nullptr && tr->quantize_row != nullptr;
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  const TypeTraits* tr = find_type_traits(t);
  LLMOPT_CHECK_MSG(tr != nullptr && tr->quantize_row != nullptr, dtype_name(t));
  LLMOPT_CHECK(n >= 0 && n % dtype_info(t).block_size == 0);
  tr->quantize_row(src, dst, n);
}

void matmul(const TensorView& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  ref::matmul_bias(w, nullptr, x, m, y, pool);
}

void matmul_bias(const TensorView& w, const float* bias, const float* x, int64_t m, float* y,
                 ThreadPool& pool) {
  ref::matmul_bias(w, bias, x, m, y, pool);
}

float dot_f32(const float* a, const float* b, int64_t n) { return ref::dot_f32(a, b, n); }
void axpy_f32(float a, const float* x, float* y, int64_t n) { ref::axpy_f32(a, x, y, n); }

void rms_norm(const float* x, const float* w, float eps, float* out, int64_t n) {
  ref::rms_norm(x, w, eps, out, n);
}
void layer_norm(const float* x, const float* w, const float* b, float eps, float* out, int64_t n) {
  ref::layer_norm(x, w, b, eps, out, n);
}
void gelu_inplace(float* x, int64_t n) { ref::gelu_inplace(x, n); }
void swiglu(const float* gate, const float* up, float* out, int64_t n) { ref::swiglu(gate, up, out, n); }
void softmax_inplace(float* x, int64_t n) { ref::softmax_inplace(x, n); }
void add_inplace(float* y, const float* x, int64_t n) { ref::add_inplace(y, x, n); }

void rope_inplace(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, RopeLayout layout) {
  ref::rope_inplace(x, head_dim, n_rot, pos, base, layout);
}

}  // namespace llmopt::kernels
