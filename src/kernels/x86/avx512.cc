// AVX-512 (F/BW/VL) + VNNI kernels (built with -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma
// -mf16c; see kernels.cmake): the shared x86 row kernels with the integer dot product done by one
// vpdpbusd (u8 x s8, 4 products summed into each int32 lane, no int16 saturation step).
#if defined(__x86_64__) || defined(__i386__)
#include "kernels/x86/act_x86.h"
#include "kernels/x86/attn512_x86.h"
#include "kernels/x86/attn_x86.h"
#include "kernels/x86/lanes512_x86.h"
#include "kernels/x86/matmul_x86.h"
#include "kernels/x86/norm_x86.h"
#include "kernels/x86/r16f512_x86.h"
#include "kernels/x86/r16k_x86.h"
#include "kernels/x86/rows512_x86.h"
#include "kernels/x86/vec_x86.h"

namespace llmopt::kernels {
namespace {

struct Avx512VnniOps {
  using FloatLanes = Lanes16;  // float weights: 16 lane sums per output
  using WideRows = kernels::WideRows;  // Q4_0 / Q4_1 decode: 16 rows x 3 blocks per 512-bit step
  static __m256i dot_u8s8(__m256i u, __m256i s) { return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s); }
};

MatmulKernel find_matmul_avx512(DType t) {
  if (t == DType::kQ8_0R16) return {q8r16_rows_vnni, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kQ4_0R16) return {q4r16_rows_vnni<false>, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kQ4_1R16) return {q4r16_rows_vnni<true>, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kQ4_KR16) return {q4kr16_rows_vnni<false>, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kQ5_KR16) return {q4kr16_rows_vnni<true>, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kQ6_KR16) return {q6kr16_rows_vnni, ActForm::kQ8Blocks, kR16Rows, true};
  if (t == DType::kF32R16) return {r16f_rows<Lanes16, false>, ActForm::kF32, kR16Rows};
  if (t == DType::kF16R16) return {r16f_rows<Lanes16, true>, ActForm::kF32, kR16Rows};
  return find_matmul_x86<Avx512VnniOps>(t);
}

}  // namespace

namespace avx512 {
const IsaKernels& kernels() {
  static constexpr IsaKernels k{Isa::kAvx512, quantize_act_row_x86, find_matmul_avx512, dot_f32_x86, axpy_f32_x86,
                                attn_block512_x86, gelu_x86, swiglu_x86, softmax_x86,
                                rms_norm_x86, layer_norm_x86, f32_to_f16_row_x86, quantize_act_i8_x86};
  return k;
}
}  // namespace avx512

}  // namespace llmopt::kernels
#endif
