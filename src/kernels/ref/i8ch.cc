// Reference W8A8 pieces for the extension type DType::kI8Ch (int8 weight codes with one f32 scale per
// row): quantizing an activation row to int8 with one scale, and the integer row kernel. The SIMD row
// kernels sum the same int32 products (exactly) and apply the same two float multiplies, so their
// results are bit-identical to these.
#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/dispatch.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {

float quantize_act_i8(const float* x, int64_t n, float static_scale, int8_t* q) {
  float scale = static_scale;
  if (scale <= 0.0f) {
    float amax = 0.0f;
    for (int64_t j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    scale = amax / 127.0f;
  }
  if (scale == 0.0f) {
    std::fill(q, q + n, int8_t{0});
    return 0.0f;
  }
  for (int64_t j = 0; j < n; ++j) {
    // Round half to even (the current rounding mode), then saturate: a static scale may be exceeded.
    // NaN gives code 0.
    const float v = std::nearbyint(x[j] / scale);
    q[j] = std::isnan(v) ? int8_t{0} : static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
  }
  return scale;
}

void matmul_rows_i8ch(const MatmulArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const auto* w = reinterpret_cast<const int8_t*>(a.w + static_cast<size_t>(r) * a.w_row_bytes);
    for (int64_t i = 0; i < a.m; ++i) {
      const int8_t* x = a.xi8 + i * a.k_pad;
      int32_t sum = 0;
      for (int64_t c = 0; c < a.k; ++c) sum += static_cast<int32_t>(w[c]) * static_cast<int32_t>(x[c]);
      // An explicit fma for the bias: the SIMD files may contract `v * s + b`, this one may not.
      const float s = a.w_scale[r] * a.x_scale[i];
      const float v = static_cast<float>(sum);
      a.y[i * a.n_out + r] = a.bias != nullptr ? std::fma(v, s, a.bias[r]) : v * s;
    }
  }
}

}  // namespace llmopt::kernels::ref
