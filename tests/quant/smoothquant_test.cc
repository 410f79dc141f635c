// SmoothQuant and W8A8: smoothing keeps a norm + linear block's output, the int8 GEMM agrees with float
// within the quantization error, and smoothing lowers the W8A8 error on activations with outlier channels.
#include "quant/smoothquant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "quant/w8a8.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

// y[n][rows] = (x ⊙ g + b) w^T in double.
std::vector<double> linear(const std::vector<float>& x, int64_t n, const std::vector<float>& g,
                           const std::vector<float>* b, const std::vector<float>& w, int64_t rows, int64_t cols) {
  std::vector<double> y(static_cast<size_t>(n * rows), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const double in = static_cast<double>(x[i * cols + c]) * g[c] + (b != nullptr ? (*b)[c] : 0.0f);
        acc += in * w[r * cols + c];
      }
      y[i * rows + r] = acc;
    }
  }
  return y;
}

struct Block {
  int64_t n = 128, cols = 128, r1 = 48, r2 = 32;
  std::vector<float> x = testdata::llm_activations(n, cols, 31);
  std::vector<float> g = [] {
    auto v = testdata::gaussian(128, 32, 0.2f);
    for (float& e : v) e += 1.0f;
    return v;
  }();
  std::vector<float> w1 = testdata::heavy_tailed_weights(r1, cols, 33, 0);
  std::vector<float> w2 = testdata::heavy_tailed_weights(r2, cols, 34, 0);
};

// The linear layers' input x ⊙ g (what the calibration statistics are taken on).
std::vector<float> normed(const Block& b) {
  std::vector<float> in(b.x.size());
  for (int64_t i = 0; i < b.n; ++i) {
    for (int64_t c = 0; c < b.cols; ++c) in[i * b.cols + c] = b.x[i * b.cols + c] * b.g[c];
  }
  return in;
}

std::vector<float> scales_for(const Block& b, float alpha) {
  std::vector<float> act, wmax;
  const auto in = normed(b);
  update_channel_abs_max(in.data(), b.n, b.cols, act);
  update_channel_abs_max(b.w1.data(), b.r1, b.cols, wmax);
  update_channel_abs_max(b.w2.data(), b.r2, b.cols, wmax);
  auto s = smoothing_scales(act, wmax, alpha);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? *s : std::vector<float>();
}

TEST(SmoothQuant, SmoothingKeepsTheOutput) {
  Block b;
  std::vector<float> bias = testdata::gaussian(b.cols, 35, 0.1f);
  const auto y1 = linear(b.x, b.n, b.g, &bias, b.w1, b.r1, b.cols);
  const auto y2 = linear(b.x, b.n, b.g, &bias, b.w2, b.r2, b.cols);
  const auto s = scales_for(b, 0.5f);
  double smin = 1e30, smax = 0.0;
  for (float v : s) smin = std::min<double>(smin, v), smax = std::max<double>(smax, v);
  EXPECT_GT(smax / smin, 10.0);  // the outlier channels get large factors
  ASSERT_TRUE(apply_smoothing(s, b.g, &bias, {{b.w1.data(), b.r1, b.cols}, {b.w2.data(), b.r2, b.cols}}).ok());
  const auto z1 = linear(b.x, b.n, b.g, &bias, b.w1, b.r1, b.cols);
  const auto z2 = linear(b.x, b.n, b.g, &bias, b.w2, b.r2, b.cols);
  double worst = 0.0, ymax = 0.0;
  for (size_t i = 0; i < y1.size(); ++i) worst = std::max(worst, std::fabs(y1[i] - z1[i])), ymax = std::max(ymax, std::fabs(y1[i]));
  for (size_t i = 0; i < y2.size(); ++i) worst = std::max(worst, std::fabs(y2[i] - z2[i])), ymax = std::max(ymax, std::fabs(y2[i]));
  std::printf("[ info     ] smoothing: max |y - y_smoothed| / max |y| = %.2e (factors %.3g .. %.3g)\n",
              worst / ymax, smin, smax);
  EXPECT_LE(worst, 1e-5 * ymax);
}

TEST(SmoothQuant, Formula) {
  auto s = smoothing_scales({4.0f, 0.0f, 9.0f}, {1.0f, 2.0f, 0.0f}, 0.5f);
  ASSERT_TRUE(s.ok());
  EXPECT_FLOAT_EQ((*s)[0], 2.0f);                                      // sqrt(4) / sqrt(1)
  EXPECT_FLOAT_EQ((*s)[1], static_cast<float>(std::sqrt(1e-5 / 2)));  // zero activations: clamped
  EXPECT_FLOAT_EQ((*s)[2], static_cast<float>(3.0 / std::sqrt(1e-5)));
  auto one = smoothing_scales({4.0f}, {16.0f}, 1.0f);
  ASSERT_TRUE(one.ok());
  EXPECT_FLOAT_EQ((*one)[0], 4.0f);
}

TEST(W8A8, Int8GemmAgreesWithFloat) {
  Block b;
  AffineSpec spec;
  spec.bits = 8;
  spec.granularity = AffineSpec::kChannel;
  spec.symmetric = true;
  auto w = quantize_rtn(b.w1.data(), b.r1, b.cols, spec);
  auto a = quantize_activation_int8_dynamic(b.x.data(), b.n, b.cols);
  ASSERT_TRUE(w.ok() && a.ok());
  auto y = gemm_w8a8(*a, *w);
  ASSERT_TRUE(y.ok()) << y.status().message();
  const auto xd = dequantize_activations(*a);
  const auto wd = dequantize(*w);
  const std::vector<float> ones(static_cast<size_t>(b.cols), 1.0f);
  const auto exact = linear(xd, b.n, ones, nullptr, wd, b.r1, b.cols);  // the int GEMM is exact in int32
  const auto ref = linear(b.x, b.n, ones, nullptr, b.w1, b.r1, b.cols);
  for (int64_t i = 0; i < b.n; ++i) {
    for (int64_t r = 0; r < b.r1; ++r) {
      const size_t k = static_cast<size_t>(i * b.r1 + r);
      double bound = 0.0, mag = 0.0;  // |x dw| + |w dx| + |dx dw| with |dx| <= sx/2, |dw| <= sw/2
      for (int64_t c = 0; c < b.cols; ++c) {
        const double xs = a->scale(i) / 2, ws = w->scales[r] / 2;
        bound += std::fabs(b.x[i * b.cols + c]) * ws + std::fabs(b.w1[r * b.cols + c]) * xs + xs * ws;
        mag += std::fabs(xd[i * b.cols + c] * wd[r * b.cols + c]);
      }
      ASSERT_NEAR((*y)[k], exact[k], 1e-5 * mag + 1e-9);
      ASSERT_LE(std::fabs((*y)[k] - ref[k]), bound * (1 + 1e-5) + 1e-9);
    }
  }
  // Static activation scale: same formula with one scale; values beyond it saturate.
  auto sc = static_activation_scale(2.54f);
  ASSERT_TRUE(sc.ok());
  EXPECT_FLOAT_EQ(*sc, 0.02f);
  const float xs[4] = {0.02f, -0.05f, 100.0f, -100.0f};
  auto st = quantize_activation_int8_static(xs, 1, 4, *sc);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->q, (std::vector<int8_t>{1, -2, 127, -127}));  // -2.5 rounds half to even
}

// Relative W8A8 error ||y - y_q|| / ||y|| of the block with or without smoothing.
double w8a8_error(const Block& orig, float alpha, bool smooth, bool dynamic) {
  Block b = orig;
  if (smooth) {
    const auto s = scales_for(b, alpha);
    EXPECT_TRUE(apply_smoothing(s, b.g, nullptr, {{b.w1.data(), b.r1, b.cols}}).ok());
  }
  const auto in = normed(b);
  AffineSpec spec;
  spec.bits = 8;
  spec.granularity = AffineSpec::kChannel;
  spec.symmetric = true;
  auto w = quantize_rtn(b.w1.data(), b.r1, b.cols, spec);
  float amax = 0.0f;
  for (float v : in) amax = std::max(amax, std::fabs(v));
  auto a = dynamic ? quantize_activation_int8_dynamic(in.data(), b.n, b.cols)
                   : quantize_activation_int8_static(in.data(), b.n, b.cols, *static_activation_scale(amax));
  EXPECT_TRUE(w.ok() && a.ok());
  auto y = gemm_w8a8(*a, *w);
  EXPECT_TRUE(y.ok());
  const std::vector<float> ones(static_cast<size_t>(b.cols), 1.0f);
  const auto ref = linear(normed(orig), orig.n, ones, nullptr, orig.w1, orig.r1, orig.cols);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) num += ((*y)[i] - ref[i]) * ((*y)[i] - ref[i]), den += ref[i] * ref[i];
  return std::sqrt(num / den);
}

TEST(W8A8, SmoothingLowersTheErrorWithOutlierChannels) {
  Block b;
  b.x = testdata::llm_activations(b.n, b.cols, 36, /*big=*/6);
  for (bool dynamic : {false, true}) {
    const double plain = w8a8_error(b, 0.5f, false, dynamic);
    const double smooth = w8a8_error(b, 0.5f, true, dynamic);
    std::printf("[ info     ] W8A8 (%s activations) relative output error: plain %.3e, smoothed (alpha 0.5) %.3e\n",
                dynamic ? "per-token" : "static per-tensor", plain, smooth);
    EXPECT_LT(smooth, 0.7 * plain);
  }
}

TEST(SmoothQuant, BadParametersHaveSpecificErrors) {
  auto s = smoothing_scales({1.0f}, {1.0f}, 1.5f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "smoothing alpha 1.500000 not in [0, 1]");
  s = smoothing_scales({}, {}, 0.5f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "empty calibration: no activation statistics for smoothing");
  s = smoothing_scales({1.0f, 2.0f}, {1.0f}, 0.5f);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "activation statistics have 2 channels but weight statistics have 1");
  std::vector<float> g = {1.0f, 1.0f};
  std::vector<float> w = {1, 2, 3};
  Status st = apply_smoothing({1.0f, 2.0f}, g, nullptr, {{w.data(), 1, 3}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "weight matrix with 3 input columns does not match 2 smoothing factors");
  EXPECT_EQ(g, (std::vector<float>{1.0f, 1.0f}));  // nothing changed
  st = apply_smoothing({1.0f, 0.0f}, g, nullptr, {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "smoothing factor 1 is 0.000000 (must be > 0)");
  auto sc = static_activation_scale(0.0f);
  ASSERT_FALSE(sc.ok());
  EXPECT_NE(sc.status().message().find("empty calibration"), std::string::npos);
  AffineSpec spec;
  spec.bits = 4;
  spec.granularity = AffineSpec::kChannel;
  spec.symmetric = true;
  const std::vector<float> m(8, 0.5f);
  auto w4 = quantize_rtn(m.data(), 2, 4, spec);
  auto a = quantize_activation_int8_dynamic(m.data(), 2, 4);
  ASSERT_TRUE(w4.ok() && a.ok());
  auto y = gemm_w8a8(*a, *w4);
  ASSERT_FALSE(y.ok());
  EXPECT_EQ(y.status().message(), "W8A8 GEMM needs 8-bit symmetric weights");
}

}  // namespace
}  // namespace llmopt::quant
