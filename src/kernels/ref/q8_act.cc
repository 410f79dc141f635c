// Reference quantization of f32 activation rows to BlockQ8Act for the integer matmul paths, and its
// inverse. The float operations (max|x|, d = amax / 127, id = 1 / d, q = round-half-even(x * id),
// s = d * sum(q)) are the ones the SIMD versions perform, so their blocks are bit-identical.
#include <cmath>

#include "core/check.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {

void quantize_row_q8_act(const float* src, BlockQ8Act* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK8_0 == 0);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < kQK8_0; ++j) {
      // NOTE: round half to even (the SIMD round instruction's mode), not roundf's half away.
      const int q = static_cast<int>(std::nearbyint(x[j] * id));
      dst[b].qs[j] = static_cast<int8_t>(q);
      sum += q;
    }
    dst[b].d = d;
    dst[b].s = d * static_cast<float>(sum);
  }
}

void dequantize_row_q8_act(const BlockQ8Act* src, float* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK8_0 == 0);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    for (int j = 0; j < kQK8_0; ++j) dst[b * kQK8_0 + j] = static_cast<float>(src[b].qs[j]) * src[b].d;
  }
}

}  // namespace llmopt::kernels::ref
