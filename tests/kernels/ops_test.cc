// Vector and row ops against their defining formulas evaluated in double: dot/axpy/add, RMS and layer
// norm, GELU (tanh form), SwiGLU, softmax (incl. large and masked values) and RoPE in both layouts
// against a rotation by a complex exponential.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"

namespace llmopt::kernels {
namespace {

std::vector<float> random_vec(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(rng);
  return v;
}

// Runs body once per ISA this CPU has, restoring the default afterwards.
template <class F>
void for_each_isa(F body) {
  const Isa saved = active_isa();
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (!isa_supported(isa)) continue;
    set_isa(isa);
    SCOPED_TRACE(isa_name(isa));
    body();
  }
  set_isa(saved);
}

TEST(KernelsOps, DotMatchesDouble) {
  for_each_isa([] {
    std::mt19937 rng(1);
    for (int64_t n : {0, 1, 5, 15, 16, 17, 31, 100, 1000, 4099}) {
      auto a = random_vec(n, rng), b = random_vec(n, rng);
      double ref = 0.0, mag = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        ref += static_cast<double>(a[i]) * b[i];
        mag += std::fabs(static_cast<double>(a[i]) * b[i]);
      }
      // f32 with 16 partial sums: error <= (n/16 + 6) * 2^-24 * sum|a*b| (< 2e-5 for n = 4099).
      EXPECT_NEAR(dot_f32(a.data(), b.data(), n), ref, 2e-5 * mag + 1e-30) << "n=" << n;
    }
  });
}

// Flash-style attention against softmax attention in double precision: a tile of 3 tokens at
// consecutive positions (causal: token t sees keys [0, base + t]) x 1 to 6 query heads per KV head, over
// chunks of at most kAttnChunk keys (f32 and f16 caches; the reference reads the same f16 values), head
// sizes that are and are not multiples of 8 and of the 64-float register tile, rows `stride` apart.
// And each query row's result, bit for bit, is the one it gets alone (batch invariance).
namespace {
struct AttnCase {
  int64_t hd;
  int32_t group;
  bool f16;
};

// Runs the chunks for tokens [t_begin, t_end) of a tile whose token t sees the first n_key - 2 + t keys
// (so 3 tokens see n_key - 2, n_key - 1 and n_key keys); returns o / l for those tokens.
std::vector<float> run_attention(const AttnCase& c, const std::vector<float>& q, const std::vector<float>& kf,
                                 const std::vector<float>& vf, const std::vector<uint16_t>& kh,
                                 const std::vector<uint16_t>& vh, int64_t stride, int32_t n_key,
                                 int32_t t_begin, int32_t t_end) {
  const int32_t n_tok = t_end - t_begin, rows = n_tok * c.group;
  const int64_t hd = c.hd;
  std::vector<float> m(rows, -std::numeric_limits<float>::infinity()), l(rows, 0.0f), o(rows * hd, 0.0f);
  std::vector<int32_t> n_vis(n_tok);
  AttnQueries a;
  a.q = q.data() + t_begin * c.group * hd;
  a.q_stride = c.group * hd;
  a.o = o.data();
  a.o_stride = c.group * hd;
  a.n_tok = n_tok;
  a.group = c.group;
  a.n_vis = n_vis.data();
  a.m = m.data();
  a.l = l.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const int32_t last = n_key - 3 + (t_end - 1);  // keys [0, last] for the tile's last token
  for (int32_t c0 = 0; c0 <= last; c0 += kAttnChunk) {
    const int32_t cn = std::min(kAttnChunk, last + 1 - c0);
    for (int32_t t = 0; t < n_tok; ++t) n_vis[t] = std::clamp(n_key - 2 + (t_begin + t) - c0, 0, cn);
    const void* k = c.f16 ? static_cast<const void*>(kh.data() + c0 * stride) : kf.data() + c0 * stride;
    const void* v = c.f16 ? static_cast<const void*>(vh.data() + c0 * stride) : vf.data() + c0 * stride;
    attn_block(a, hd, scale, k, v, c.f16, stride, cn);
  }
  for (int32_t r = 0; r < rows; ++r) {
    for (int64_t d = 0; d < hd; ++d) o[r * hd + d] /= l[r];
  }
  return o;
}
}  // namespace

TEST(KernelsOps, FlashAttentionMatchesDoubleSoftmaxAndIsTileInvariant) {
  for_each_isa([] {
    std::mt19937 rng(5);
    const int32_t n_key = 70;  // the tile's tokens see 68, 69 and 70 keys: 5 chunks, the last partial
    const int32_t n_tok = 3;
    for (bool f16 : {false, true}) {
      for (int32_t group : {1, 2, 3, 4, 5, 6}) {
        for (int64_t hd : {8, 24, 64, 80, 128, 13}) {
          const AttnCase c{hd, group, f16};
          const int64_t stride = hd * 3 + 5;
          // Scores of a few units, as in trained models (q and k of norm ~ sqrt(hd), scale 1/sqrt(hd)).
          auto q = random_vec(n_tok * group * hd, rng, -2.0f, 2.0f);
          auto kf = random_vec(stride * n_key, rng, -2.0f, 2.0f), vf = random_vec(stride * n_key, rng);
          std::vector<uint16_t> kh(kf.size()), vh(vf.size());
          for (size_t i = 0; i < kf.size(); ++i) {
            kh[i] = fp32_to_fp16(kf[i]);
            vh[i] = fp32_to_fp16(vf[i]);
            if (f16) {  // the values the kernel sees
              kf[i] = fp16_to_fp32(kh[i]);
              vf[i] = fp16_to_fp32(vh[i]);
            }
          }
          const auto tile = run_attention(c, q, kf, vf, kh, vh, stride, n_key, 0, n_tok);
          for (int32_t t = 0; t < n_tok; ++t) {
            const int32_t vis = n_key - 2 + t;
            // Alone, the token gets the same bits.
            const auto alone = run_attention(c, q, kf, vf, kh, vh, stride, n_key, t, t + 1);
            for (int64_t x = 0; x < group * hd; ++x) {
              ASSERT_EQ(tile[t * group * hd + x], alone[x])
                  << "f16=" << f16 << " group=" << group << " hd=" << hd;
            }
            for (int32_t i = 0; i < group; ++i) {
              const float* qi = q.data() + (t * group + i) * hd;
              std::vector<double> s(vis);
              double mx = -1e300;
              for (int32_t j = 0; j < vis; ++j) {
                double d = 0.0;
                for (int64_t e = 0; e < hd; ++e) d += static_cast<double>(qi[e]) * kf[j * stride + e];
                s[j] = d / std::sqrt(static_cast<double>(hd));
                mx = std::max(mx, s[j]);
              }
              double sum = 0.0;
              for (int32_t j = 0; j < vis; ++j) sum += std::exp(s[j] - mx);
              for (int64_t e = 0; e < hd; ++e) {
                double ref = 0.0;
                for (int32_t j = 0; j < vis; ++j) ref += std::exp(s[j] - mx) / sum * vf[j * stride + e];
                // Values are in [-1, 1] and the weights sum to 1: an absolute bound. f32 scores (error
                // ~1e-6 each, exponentiated), a few-ulp exp and 70 f32 accumulations stay below 2e-5.
                EXPECT_NEAR(tile[(t * group + i) * hd + e], ref, 2e-5)
                    << "f16=" << f16 << " group=" << group << " hd=" << hd << " t=" << t << " i=" << i;
              }
            }
          }
        }
      }
    }
  });
}

TEST(KernelsOps, AxpyAndAdd) {
  for_each_isa([] {
    std::mt19937 rng(2);
    const int64_t n = 37;
    auto x = random_vec(n, rng), y = random_vec(n, rng);
    auto y_axpy = y, y_add = y;
    axpy_f32(0.75f, x.data(), y_axpy.data(), n);
    add_inplace(y_add.data(), x.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      // One rounding each (the product 0.75 * x is exact up to one rounding, then the sum).
      EXPECT_NEAR(y_axpy[i], static_cast<double>(y[i]) + 0.75 * x[i], 1.2e-7);
      EXPECT_EQ(y_add[i], y[i] + x[i]);
    }
  });
}

TEST(KernelsOps, RmsNorm) {
  for_each_isa([] {
    std::mt19937 rng(3);
    for (int64_t n : {1, 7, 64, 333}) {
      auto x = random_vec(n, rng, -3.0f, 3.0f), w = random_vec(n, rng);
      std::vector<float> out(static_cast<size_t>(n));
      const float eps = 1e-5f;
      rms_norm(x.data(), w.data(), eps, out.data(), n);
      double ss = 0.0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = x[i] * scale * w[i];
        EXPECT_NEAR(out[i], ref, 1e-5 * std::fabs(ref) + 1e-7) << "n=" << n << " i=" << i;
      }
      // In place is allowed.
      auto xi = x;
      rms_norm(xi.data(), w.data(), eps, xi.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(xi[i], out[i]);
    }
  });
}

TEST(KernelsOps, LayerNormWithAndWithoutBias) {
  for_each_isa([] {
    std::mt19937 rng(4);
    for (int64_t n : {2, 9, 768, 1001}) {
      auto x = random_vec(n, rng, 5.0f, 9.0f);  // a large mean, so the centring matters
      auto w = random_vec(n, rng), b = random_vec(n, rng);
      const float eps = 1e-5f;
      double mean = 0.0;
      for (float v : x) mean += v;
      mean /= static_cast<double>(n);
      double var = 0.0;
      for (float v : x) var += (v - mean) * (v - mean);
      var /= static_cast<double>(n);
      const double inv = 1.0 / std::sqrt(var + eps);
      std::vector<float> out(static_cast<size_t>(n)), out_nb(static_cast<size_t>(n));
      layer_norm(x.data(), w.data(), b.data(), eps, out.data(), n);
      layer_norm(x.data(), w.data(), nullptr, eps, out_nb.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double ref = (x[i] - mean) * inv * w[i];
        // Centring x in f32 loses up to half an ulp of |x| ~ 8, i.e. 5e-7 absolute before scaling by
        // inv (< 1 / stddev ~ 1 / 1.15 here).
        EXPECT_NEAR(out_nb[i], ref, 2e-6 + 1e-5 * std::fabs(ref)) << "n=" << n << " i=" << i;
        EXPECT_NEAR(out[i], ref + b[i], 2e-6 + 1e-5 * std::fabs(ref)) << "n=" << n << " i=" << i;
      }
      // In place is allowed.
      auto xi = x;
      layer_norm(xi.data(), w.data(), b.data(), eps, xi.data(), n);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(xi[i], out[i]);
    }
  });
}

TEST(KernelsOps, F16RowsAreTheScalarConversionBitForBit) {
  // Every ISA's f32 -> f16 row (the KV cache's writes) against fp32_to_fp16, on random values of every
  // magnitude and the edge cases: signed zeros, the subnormal range and its rounding boundaries, the
  // largest half, the overflow boundary (65520 rounds to infinity), infinities and NaNs.
  std::vector<float> x = {0.0f,
                          -0.0f,
                          5.96e-8f,
                          2.98e-8f,
                          2.99e-8f,
                          6.1e-5f,
                          6.09e-5f,
                          65504.0f,
                          65519.0f,
                          65520.0f,
                          -65520.0f,
                          1e10f,
                          std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::quiet_NaN(),
                          1.0009765625f,
                          1.00048828125f};
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> ex(-30, 18);
  for (int i = 0; i < 4000; ++i) x.push_back((i % 2 ? -1.0f : 1.0f) * std::ldexp(mant(rng), ex(rng)));
  x.push_back(1.5f);  // an odd length: the scalar tail too
  for_each_isa([&] {
    std::vector<uint16_t> got(x.size());
    quantize_row(DType::kF16, x.data(), got.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(got[i], fp32_to_fp16(x[i])) << "x=" << x[i] << " at " << i;
  });
}

TEST(KernelsOps, GeluTanhApproximation) {
  std::vector<float> x;
  for (int i = -1000; i <= 1000; ++i) x.push_back(static_cast<float>(i) * 0.01f);
  for (float v : {-50.0f, -12.0f, 12.0f, 50.0f, 1e4f, -1e4f, 0.0f}) x.push_back(v);
  for_each_isa([&] {
    auto y = x;
    gelu_inplace(y.data(), static_cast<int64_t>(y.size()));
    const double c = std::sqrt(2.0 / M_PI);
    for (size_t i = 0; i < x.size(); ++i) {
      const double v = x[i];
      const double ref = 0.5 * v * (1.0 + std::tanh(c * (v + 0.044715 * v * v * v)));
      // The SIMD exp is within a few ulp; the scalar tanh form loses a little more near x = -3.
      ASSERT_NEAR(y[i], ref, 1e-6 + 1e-5 * std::fabs(ref)) << "x=" << v;
    }
  });
}

// An element's GELU / SwiGLU does not depend on where it sits in the call (a matmul epilogue applies
// GELU to pieces of rows; a token's SwiGLU row may start anywhere in a batch): pieces of every length
// from 1 to 17 give the bits of one call over the whole buffer.
TEST(KernelsOps, GeluAndSwigluDoNotDependOnTheSplit) {
  std::vector<float> x, u;
  for (int i = 0; i < 300; ++i) {
    x.push_back(std::sin(static_cast<float>(i) * 0.37f) * 4.0f);
    u.push_back(std::cos(static_cast<float>(i) * 0.11f));
  }
  for_each_isa([&] {
    auto whole = x;
    gelu_inplace(whole.data(), static_cast<int64_t>(whole.size()));
    std::vector<float> sw(x.size());
    swiglu(x.data(), u.data(), sw.data(), static_cast<int64_t>(x.size()));
    for (int64_t piece = 1; piece <= 17; ++piece) {
      auto split = x;
      std::vector<float> sw_split(x.size());
      for (int64_t i = 0; i < static_cast<int64_t>(x.size()); i += piece) {
        const int64_t n = std::min<int64_t>(piece, static_cast<int64_t>(x.size()) - i);
        gelu_inplace(split.data() + i, n);
        swiglu(x.data() + i, u.data() + i, sw_split.data() + i, n);
      }
      ASSERT_EQ(split, whole) << "GELU, pieces of " << piece;
      ASSERT_EQ(sw_split, sw) << "SwiGLU, pieces of " << piece;
    }
  });
}

TEST(KernelsOps, Swiglu) {
  std::vector<float> g, u;
  for (int i = -400; i <= 400; ++i) {
    g.push_back(static_cast<float>(i) * 0.05f);
    u.push_back(0.5f + static_cast<float>(i % 7) * 0.25f);
  }
  for (float v : {-100.0f, -90.0f, 90.0f, 100.0f}) {
    g.push_back(v);
    u.push_back(1.5f);
  }
  for_each_isa([&] {
    std::vector<float> out(g.size());
    swiglu(g.data(), u.data(), out.data(), static_cast<int64_t>(g.size()));
    for (size_t i = 0; i < g.size(); ++i) {
      const double gd = g[i];
      const double ref = gd / (1.0 + std::exp(-gd)) * u[i];
      ASSERT_NEAR(out[i], ref, 1e-6 + 1e-6 * std::fabs(ref)) << "g=" << g[i];
    }
    // In place (out = gate, as the LLaMA FFN calls it): the same values.
    std::vector<float> in_place = g;
    swiglu(in_place.data(), u.data(), in_place.data(), static_cast<int64_t>(g.size()));
    EXPECT_EQ(in_place, out);
  });
}

void expect_softmax_matches(std::vector<float> x) {
  const int64_t n = static_cast<int64_t>(x.size());
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> ref(x.size());
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) sum += (ref[i] = std::exp(x[i] - mx));
  softmax_inplace(x.data(), n);
  double total = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i], ref[i] / sum, 1e-6 + 1e-5 * ref[i] / sum) << i;
    total += x[i];
  }
  EXPECT_NEAR(total, 1.0, 1e-5);
}

TEST(KernelsOps, SoftmaxPlainLargeAndMasked) {
  for_each_isa([] {
    std::mt19937 rng(5);
    expect_softmax_matches(random_vec(50, rng, -5.0f, 5.0f));
    expect_softmax_matches(random_vec(1003, rng, -20.0f, 20.0f));
    std::vector<float> masked = random_vec(64, rng, -3.0f, 3.0f);
    for (size_t i = 0; i < masked.size(); i += 3) masked[i] = -std::numeric_limits<float>::infinity();
    expect_softmax_matches(masked);  // masked entries inside SIMD lanes get 0 too
    expect_softmax_matches({1000.0f, 1001.0f, 999.0f, 1000.5f});  // exp would overflow unshifted
    expect_softmax_matches({-1000.0f, -1001.0f, -999.0f});        // exp would underflow unshifted
    expect_softmax_matches({3e38f, 3e38f, -3e38f});
    const float ninf = -std::numeric_limits<float>::infinity();
    expect_softmax_matches({0.5f, ninf, 1.5f, ninf});  // masked entries get 0
    std::vector<float> one = {42.0f};
    softmax_inplace(one.data(), 1);
    EXPECT_EQ(one[0], 1.0f);
    std::vector<float> all_masked(19, ninf);
    softmax_inplace(all_masked.data(), 19);
    for (float v : all_masked) EXPECT_EQ(v, 0.0f);
  });
}

// Rotation of pair (x[a], x[b]) by theta_i = pos * base^(-2i/n_rot), as (x[a] + i x[b]) * e^(i theta).
std::vector<double> rope_reference(const std::vector<float>& x, int64_t n_rot, int64_t pos, double base,
                                   RopeLayout layout) {
  std::vector<double> out(x.begin(), x.end());
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const int64_t a = layout == RopeLayout::kAdjacent ? 2 * i : i;
    const int64_t b = layout == RopeLayout::kAdjacent ? 2 * i + 1 : i + n_rot / 2;
    const long double theta =
        static_cast<long double>(pos) *
        std::pow(static_cast<long double>(base), -2.0L * i / static_cast<long double>(n_rot));
    const std::complex<long double> z(x[a], x[b]);
    const std::complex<long double> r = z * std::polar(1.0L, theta);
    out[a] = static_cast<double>(r.real());
    out[b] = static_cast<double>(r.imag());
  }
  return out;
}

TEST(KernelsOps, RopeBothLayoutsMatchComplexRotation) {
  std::mt19937 rng(6);
  struct Case {
    int64_t head_dim, n_rot, pos;
    float base;
  };
  const Case cases[] = {{64, 64, 0, 10000.0f},       {64, 64, 1, 10000.0f},   {64, 64, 17, 10000.0f},
                        {128, 128, 4095, 500000.0f}, {80, 32, 300, 10000.0f}, {10, 6, 123456, 10000.0f},
                        {64, 64, 17, 10000.0f},
                        // positions 64 apart share a slot of the per-thread table cache: each must
                        // still get its own angles, as must another base or n_rot at a cached position
                        {64, 64, 81, 10000.0f},      {64, 64, 17, 10000.0f},  {64, 64, 17, 500000.0f},
                        {64, 32, 17, 10000.0f},      {64, 64, 145, 10000.0f}, {64, 64, 81, 10000.0f}};
  for (RopeLayout layout : {RopeLayout::kAdjacent, RopeLayout::kNeox}) {
    for (const Case& c : cases) {
      SCOPED_TRACE("layout=" + std::to_string(static_cast<int>(layout)) +
                   " head_dim=" + std::to_string(c.head_dim) + " n_rot=" + std::to_string(c.n_rot) +
                   " pos=" + std::to_string(c.pos));
      auto x = random_vec(c.head_dim, rng);
      auto y = x;
      rope_inplace(y.data(), c.head_dim, c.n_rot, c.pos, c.base, layout);
      const auto ref = rope_reference(x, c.n_rot, c.pos, c.base, layout);
      for (int64_t i = 0; i < c.head_dim; ++i) {
        if (i >= c.n_rot) {
          EXPECT_EQ(y[i], x[i]) << "dim " << i << " is past n_rot and must be untouched";
        } else {
          // cos/sin rounded to f32 (2^-24 relative each) and two f32 products and a sum: a few 1e-7
          // for |x| <= 1.
          EXPECT_NEAR(y[i], ref[i], 5e-7) << "dim " << i;
        }
      }
      if (c.pos == 0) {
        for (int64_t i = 0; i < c.head_dim; ++i) EXPECT_EQ(y[i], x[i]);
      }
    }
  }
}

TEST(KernelsOps, RopePreservesPairNorms) {
  std::mt19937 rng(8);
  auto x = random_vec(64, rng);
  for (int64_t pos : {5, 6, 5, 1000}) {  // revisits a position to exercise the per-thread table
    auto y = x;
    rope_inplace(y.data(), 64, 64, pos, 10000.0f, RopeLayout::kNeox);
    for (int i = 0; i < 32; ++i) {
      const double before = std::hypot(x[i], x[i + 32]);
      const double after = std::hypot(y[i], y[i + 32]);
      EXPECT_NEAR(after, before, 1e-6);
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
