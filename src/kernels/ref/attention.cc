// Reference flash-style attention step (kernels::attn_block): scalar, one query row at a time, K and V
// rows read as f32 (f16 rows converted exactly first).
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

void attn_block(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                int64_t stride, int32_t n) {
  std::vector<float> tmp(static_cast<size_t>(hd));
  float s[kAttnChunk];
  for (int32_t t = 0; t < a.n_tok; ++t) {
    const int32_t vis = std::min(n, a.n_vis[t]);
    if (vis <= 0) continue;
    for (int32_t i = 0; i < a.group; ++i) {
      const int32_t r = t * a.group + i;
      const float* qi = a.q + t * a.q_stride + i * hd;
      float* oi = a.o + t * a.o_stride + i * hd;
      float mx = a.m[r];
      for (int32_t j = 0; j < vis; ++j) {
        s[j] = dot_f32(qi, row_f32(k, kv_f16, stride, j, hd, tmp.data()), hd) * scale;
        mx = std::fmax(mx, s[j]);
      }
      // exp(-inf - M) = 0: the first chunk starts from the empty state.
      const float c = std::exp(a.m[r] - mx);
      for (int64_t d = 0; d < hd; ++d) oi[d] *= c;
      float sum = 0.0f;
      for (int32_t j = 0; j < vis; ++j) {
        const float p = std::exp(s[j] - mx);
        sum += p;
        axpy_f32(p, row_f32(v, kv_f16, stride, j, hd, tmp.data()), oi, hd);
      }
      a.l[r] = a.l[r] * c + sum;
      a.m[r] = mx;
    }
  }
}

}  // namespace llmopt::kernels::ref
