// AVX2 + FMA + F16C kernels (built with -mavx2 -mfma -mf16c; see kernels.cmake). The integer dot
// product of 32 u8 x s8 pairs is vpmaddubsw (to int16 pairs) then vpmaddwd by ones (to int32).
// NOTE: the u8 operand is |w| <= 128 and the s8 one |x| <= 127 (or unsigned codes w <= 31 and |x| <= 127), so
// the int16 pair sums (<= 2 * 128 * 127 = 32512) never saturate.
#if defined(__x86_64__) || defined(__i386__)
#include "kernels/x86/act_x86.h"
#include "kernels/x86/attn_x86.h"
#include "kernels/x86/matmul_x86.h"
#include "kernels/x86/norm_x86.h"
#include "kernels/x86/r16avx2_x86.h"
#include "kernels/x86/r16f_x86.h"
#include "kernels/x86/r16kavx2_x86.h"
#include "kernels/x86/vec_x86.h"

namespace llmopt::kernels {
namespace {

struct Avx2Ops {
  static __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
  }
  // The two halves of dot_u8s8, for kernels that add several int16 pair sums before widening.
  static constexpr bool kPairSums16 = true;
  static __m256i pairs_u8s8(__m256i u, __m256i s) { return _mm256_maddubs_epi16(u, s); }
  static __m256i widen16(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }
};

MatmulKernel find_matmul_avx2(DType t) {
  // The regrouped integer layouts read the interleaved activations of batches (r16avx2_x86.h).
  if (t == DType::kQ8_0R16) return {q8r16_rows_avx2<Avx2Ops>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kQ4_0R16) return {q4r16_rows_avx2<false, Avx2Ops>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kQ4_1R16) return {q4r16_rows_avx2<true, Avx2Ops>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kQ4_KR16) return {q4kr16_rows_avx2<Avx2Ops>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kQ6_KR16) return {q6kr16_rows_avx2<Avx2Ops, false>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kQ6_KR16X3) return {q6kr16_rows_avx2<Avx2Ops, true>, ActForm::kQ8Blocks, kR16Rows};
  if (t == DType::kF32R16) return {r16f_rows<Lanes8, false>, ActForm::kF32, kR16Rows};
  if (t == DType::kF16R16) return {r16f_rows<Lanes8, true>, ActForm::kF32, kR16Rows};
  return find_matmul_x86<Avx2Ops>(t);
}

}  // namespace

namespace avx2 {
const IsaKernels& kernels() {
  static constexpr IsaKernels k{Isa::kAvx2, quantize_act_row_x86, find_matmul_avx2, dot_f32_x86, axpy_f32_x86,
                                attn_block_x86, gelu_x86, swiglu_x86, softmax_x86,
                                rms_norm_x86, layer_norm_x86, f32_to_f16_row_x86, quantize_act_i8_x86};
  return k;
}
}  // namespace avx2

}  // namespace llmopt::kernels
#endif
