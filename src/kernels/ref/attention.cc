// Reference flash-style attention step (kernels::attn_block): scalar, keys kAttnChunk at a time,
// K and V rows read as f32 (f16 rows converted exactly first).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {
namespace {

// Row j of a K or V block as f32.
const float* row_f32(const void* base, bool f16, int64_t stride, int32_t j, int64_t hd, float* tmp) {
  if (!f16) return static_cast<const float*>(base) + j * stride;
  const uint16_t* h = static_cast<const uint16_t*>(base) + j * stride;
  for (int64_t d = 0; d < hd; ++d) tmp[d] = fp16_to_fp32(h[d]);
  return tmp;
}

}  // namespace

void attn_block(const float* q, int32_t nq, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                int64_t stride, int32_t n, float* m, float* l, float* o) {
  std::vector<float> tmp(static_cast<size_t>(hd));
  float s[kAttnChunk];
  for (int32_t c0 = 0; c0 < n; c0 += kAttnChunk) {
    const int32_t cn = std::min(kAttnChunk, n - c0);
    for (int32_t i = 0; i < nq; ++i) {
      const float* qi = q + i * hd;
      float* oi = o + i * hd;
      float mx = m[i];
      for (int32_t j = 0; j < cn; ++j) {
        s[j] = dot_f32(qi, row_f32(k, kv_f16, stride, c0 + j, hd, tmp.data()), hd) * scale;
        mx = std::fmax(mx, s[j]);
      }
      // exp(-inf - M) = 0: the first chunk starts from the empty state.
      const float c = std::exp(m[i] - mx);
      for (int64_t d = 0; d < hd; ++d) oi[d] *= c;
      float sum = 0.0f;
      for (int32_t j = 0; j < cn; ++j) {
        const float p = std::exp(s[j] - mx);
        sum += p;
        axpy_f32(p, row_f32(v, kv_f16, stride, c0 + j, hd, tmp.data()), oi, hd);
      }
      l[i] = l[i] * c + sum;
      m[i] = mx;
    }
  }
}

}  // namespace llmopt::kernels::ref
