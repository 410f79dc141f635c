// Reference round-to-nearest quantizers: f32 rows -> GGML's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
// Q5_K and Q6_K blocks. These reproduce llama.cpp's quantize_row_*_ref (no importance matrix) bit for
// bit, which is what makes our GGUF files byte-identical to llama.cpp's. Every float expression below
// keeps GGML's operand order on purpose; reassociating any of them changes the output bytes.
// NOTE: this file must be compiled without FMA contraction (it is, as a portable x86-64 unit); a
// global -march=native would also need -ffp-contract=off here to stay bit-exact.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/dtype.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {
namespace {

// Groups whose largest magnitude is below this are treated as all zero (GGML's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Rows are written block by block through memcpy: the destination may be any byte offset.
template <class Block>
void store_block(uint8_t* p, int64_t i, const Block& b) {
  std::memcpy(p + static_cast<size_t>(i) * sizeof(Block), &b, sizeof(Block));
}

// Round half to even for |v| < 2^22, the way GGML does it: adding 1.5 * 2^23 pushes the fraction out
// of the mantissa, so the FPU's rounding mode does the work and the low mantissa bits hold the result.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

// GGML's (int8_t) cast of a float: truncation toward zero, then (for out-of-range values, which only
// arise from non-finite inputs) the low 8 bits, as x86 compilers produce it.
inline int trunc_int(float v) { return static_cast<int8_t>(static_cast<int>(v)); }

// Symmetric block types (Q4_0, Q5_0): the signed extreme of a block and d = extreme / -half so that
// the extreme maps to code 0; returns the extreme value (with its sign).
float signed_extreme(const float* x, int n) {
  float amax = 0.0f, extreme = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      extreme = x[j];
    }
  }
  return extreme;
}

// Asymmetric block types (Q4_1, Q5_1): min and max of a block.
void min_max(const float* x, int n, float* lo, float* hi) {
  float mn = FLT_MAX, mx = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
  *lo = mn;
  *hi = mx;
}

// Scale and codes for one group with a minimum (Q4_K / Q5_K sub-blocks): codes in [0, nmax] with
// x ~ scale * code - the_min. Starts from the min/max grid, then tries nstep+1 slightly different
// grids, solving the weighted least-squares scale and min for each and keeping the best weighted
// squared error. codes receives the chosen codes; scratch is n bytes of working space.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* codes, float* the_min,
                    uint8_t* scratch, float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    for (int i = 0; i < n; ++i) codes[i] = 0;
    *the_min = -lo;
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / (hi - lo);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - lo));
    codes[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * static_cast<float>(codes[i]) + lo - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -lo;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - lo));
      l = std::max(0, std::min(nmax, l));
      scratch[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const auto fl = static_cast<float>(l);
      sum_l += w * fl;
      sum_l2 += w * fl * fl;
      sum_xl += w * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * static_cast<float>(scratch[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        std::memcpy(codes, scratch, static_cast<size_t>(n));
        best_error = cur_error;
        scale = this_scale;
        lo = this_min;
      }
    }
  }
  *the_min = -lo;
  return scale;
}

// Symmetric scale for one Q6_K group of n values: codes in [0, 2*nmax) meaning code - nmax, weights
// x^2. Starts from scale = extreme / -nmax and tries 18 nearby grids, keeping the one with the best
// weighted least-squares fit. Returns the scale (0 for an all-zero group, whose codes are all 0).
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* codes) {
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      extreme = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) codes[i] = 0;
    return 0.f;
  }
  const auto clamp_code = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = static_cast<float>(-nmax) / extreme;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_code(nearest_int(iscale * x[i]));
    codes[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const auto fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / extreme;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_code(nearest_int(iscale * x[i]));
      const float w = x[i] * x[i];
      const auto fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i)
        codes[i] = static_cast<int8_t>(nmax + clamp_code(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q4_K and Q5_K share everything but the code width and the search grid: 8 sub-blocks of 32, each
// fitted with fit_scale_min; the 8 scales and 8 mins then quantized to 6 bits against the largest,
// and the codes recomputed against those rounded scales. Writes the 12 packed scale bytes, d, dmin,
// and the final codes (256, one per element) into `codes`.
void quantize_superblock_k(const float* x, int nmax, float rmin, int nstep, uint8_t* scales_out, Half* d_out,
                           Half* dmin_out, uint8_t* codes) {
  constexpr int kSub = 32;
  constexpr int kNSub = kQK_K / kSub;
  float scales[kNSub], mins[kNSub], weights[kSub];
  uint8_t scratch[kSub];
  float max_scale = 0, max_min = 0;  // the min is subtracted, so scales are never negative
  for (int j = 0; j < kNSub; ++j) {
    const float* xs = x + kSub * j;
    float sum_x2 = 0;
    for (int l = 0; l < kSub; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / kSub);
    for (int l = 0; l < kSub; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] =
        fit_scale_min(kSub, nmax, xs, weights, codes + kSub * j, &mins[j], scratch, rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(scales_out, 0, kKScaleSize);
  for (int j = 0; j < kNSub; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    // Packing as read by dequant.cc's scale_min_k4.
    if (j < 4) {
      scales_out[j] = ls;
      scales_out[j + 4] = lm;
    } else {
      scales_out[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      scales_out[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      scales_out[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);
  const float d_all = fp16_to_fp32(*d_out);
  const float dmin_all = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < kNSub; ++j) {
    uint8_t sc, m;
    if (j < 4) {
      sc = scales_out[j] & 63;
      m = scales_out[j + 4] & 63;
    } else {
      sc = static_cast<uint8_t>((scales_out[j + 4] & 0xF) | ((scales_out[j - 4] >> 6) << 4));
      m = static_cast<uint8_t>((scales_out[j + 4] >> 4) | ((scales_out[j] >> 6) << 4));
    }
    const float d = d_all * static_cast<float>(sc);
    // NOTE: a sub-block whose rounded scale is 0 keeps the codes from its own fit, as GGML does.
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int l = 0; l < kSub; ++l) {
      const int q = nearest_int((x[kSub * j + l] + dm) / d);
      codes[kSub * j + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, q)));
    }
  }
}

}  // namespace

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK8_0 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK8_0; ++i) {
    const float* x = src + i * kQK8_0;
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ8_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    store_block(p, i, b);
  }
}

void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_0 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK4_0; ++i) {
    const float* x = src + i * kQK4_0;
    const float d = signed_extreme(x, kQK4_0) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int q0 = std::min(15, trunc_int(x[j] * id + 8.5f));
      const int q1 = std::min(15, trunc_int(x[j + kQK4_0 / 2] * id + 8.5f));
      b.qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
    store_block(p, i, b);
  }
}

namespace {

// Q4_1's reference rounding of 32 values with the group's lo and 1/d into 16 bytes of nibbles
// (element j low, j + 16 high).
void pack_q4_1_nibbles(const float* x, float lo, float id, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) {
    const int q0 = std::min(15, trunc_int((x[j] - lo) * id + 0.5f));
    const int q1 = std::min(15, trunc_int((x[j + 16] - lo) * id + 0.5f));
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

}  // namespace

void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_1 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK4_1; ++i) {
    const float* x = src + i * kQK4_1;
    float lo, hi;
    min_max(x, kQK4_1, &lo, &hi);
    const float d = (hi - lo) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(lo);
    pack_q4_1_nibbles(x, lo, id, b.qs);
    store_block(p, i, b);
  }
}

void quantize_row_q4_1_g128(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK4_1G128 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK4_1G128; ++i) {
    const float* x = src + i * kQK4_1G128;
    float lo, hi;
    min_max(x, kQK4_1G128, &lo, &hi);
    const float d = (hi - lo) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ4_1G128 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(lo);
    for (int s = 0; s < 4; ++s) pack_q4_1_nibbles(x + 32 * s, lo, id, b.qs + 16 * s);
    store_block(p, i, b);
  }
}

void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK5_0 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK5_0; ++i) {
    const float* x = src + i * kQK5_0;
    const float d = signed_extreme(x, kQK5_0) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_0 b;
    b.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_0 / 2; ++j) {
      const int q0 = std::min(31, trunc_int(x[j] * id + 16.5f));
      const int q1 = std::min(31, trunc_int(x[j + kQK5_0 / 2] * id + 16.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK5_0 / 2);
    }
    for (int k = 0; k < 4; ++k) b.qh[k] = static_cast<uint8_t>(qh >> (8 * k));
    store_block(p, i, b);
  }
}

void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK5_1 == 0);
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / kQK5_1; ++i) {
    const float* x = src + i * kQK5_1;
    float lo, hi;
    min_max(x, kQK5_1, &lo, &hi);
    const float d = (hi - lo) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    BlockQ5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(lo);
    uint32_t qh = 0;
    for (int j = 0; j < kQK5_1 / 2; ++j) {
      // NOTE: no clamp to 31 here, exactly like GGML (the code is cut to 8 bits, then split).
      const auto q0 = static_cast<uint8_t>(trunc_int((x[j] - lo) * id + 0.5f));
      const auto q1 = static_cast<uint8_t>(trunc_int((x[j + kQK5_1 / 2] - lo) * id + 0.5f));
      b.qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
      qh |= static_cast<uint32_t>((q0 >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((q1 >> 4) & 1) << (j + kQK5_1 / 2);
    }
    for (int k = 0; k < 4; ++k) b.qh[k] = static_cast<uint8_t>(qh >> (8 * k));
    store_block(p, i, b);
  }
}

void quantize_row_q4_k(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  auto* p = static_cast<uint8_t*>(dst);
  uint8_t codes[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    BlockQ4_K b;
    quantize_superblock_k(src + i * kQK_K, 15, -1.f, 20, b.scales, &b.d, &b.dmin, codes);
    // Each 64 elements: the first 32 in the low nibbles, the next 32 in the high nibbles.
    uint8_t* q = b.qs;
    for (int j = 0; j < kQK_K; j += 64, q += 32) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(codes[j + l] | (codes[j + l + 32] << 4));
    }
    store_block(p, i, b);
  }
}

void quantize_row_q5_k(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  auto* p = static_cast<uint8_t*>(dst);
  uint8_t codes[kQK_K];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    BlockQ5_K b;
    quantize_superblock_k(src + i * kQK_K, 31, -0.5f, 15, b.scales, &b.d, &b.dmin, codes);
    // As Q4_K for the low 4 bits; the fifth bit of 64-group g goes to bit 2g / 2g+1 of qh[l].
    std::memset(b.qh, 0, sizeof(b.qh));
    uint8_t* ql = b.qs;
    uint8_t m1 = 1, m2 = 2;
    for (int g = 0; g < kQK_K; g += 64, ql += 32) {
      for (int l = 0; l < 32; ++l) {
        int c1 = codes[g + l];
        int c2 = codes[g + l + 32];
        if (c1 > 15) {
          c1 -= 16;
          b.qh[l] |= m1;
        }
        if (c2 > 15) {
          c2 -= 16;
          b.qh[l] |= m2;
        }
        ql[l] = static_cast<uint8_t>(c1 | (c2 << 4));
      }
      m1 = static_cast<uint8_t>(m1 << 2);
      m2 = static_cast<uint8_t>(m2 << 2);
    }
    store_block(p, i, b);
  }
}

void quantize_row_q6_k(const float* src, void* dst, int64_t n) {
  LLMOPT_CHECK(n % kQK_K == 0);
  constexpr int kSub = 16;
  constexpr int kNSub = kQK_K / kSub;
  auto* p = static_cast<uint8_t*>(dst);
  int8_t codes[kQK_K];
  float scales[kNSub];
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const float* x = src + i * kQK_K;
    BlockQ6_K b;
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < kNSub; ++ib) {
      scales[ib] = fit_scale_symmetric(kSub, 32, x + kSub * ib, codes + kSub * ib);
      const float abs_scale = std::fabs(scales[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b, 0, sizeof(b));
      b.d = fp32_to_fp16(0.f);
      store_block(p, i, b);
      continue;
    }
    const float iscale = -128.f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < kNSub; ++ib) {
      b.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    }
    const float d_all = fp16_to_fp32(b.d);
    for (int j = 0; j < kNSub; ++j) {
      const float d = d_all * static_cast<float>(b.scales[j]);
      if (d == 0.0f) continue;  // keeps the group's own codes, as GGML does
      for (int l = 0; l < kSub; ++l) {
        const int q = nearest_int(x[kSub * j + l] / d);
        codes[kSub * j + l] = static_cast<int8_t>(std::max(-32, std::min(31, q)) + 32);
      }
    }
    // Two halves of 128; see dequantize_row_q6_k for the layout.
    uint8_t* ql = b.ql;
    uint8_t* qh = b.qh;
    for (int j = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const auto c0 = static_cast<uint8_t>(codes[j + l]);
        const auto c1 = static_cast<uint8_t>(codes[j + l + 32]);
        const auto c2 = static_cast<uint8_t>(codes[j + l + 64]);
        const auto c3 = static_cast<uint8_t>(codes[j + l + 96]);
        ql[l] = static_cast<uint8_t>((c0 & 0xF) | ((c2 & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((c1 & 0xF) | ((c3 & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((c0 >> 4) | ((c1 >> 4) << 2) | ((c2 >> 4) << 4) | ((c3 >> 4) << 6));
      }
    }
    store_block(p, i, b);
  }
}

}  // namespace llmopt::kernels::ref
