// AWQ: lower layer output error than RTN on LLM-like activations, the output-equivalence contract of the
// returned scales, and parameter errors.
#include "quant/awq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "quant/metrics.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

using testdata::spec_of;

struct AwqLayer {
  int64_t rows = 64, cols = 256, n = 512;
  std::vector<float> w = testdata::heavy_tailed_weights(rows, cols, 11);
  std::vector<float> x = testdata::llm_activations(n, cols, 12);
};
const AwqLayer& layer() {
  static const AwqLayer l;
  return l;
}

struct AwqCase {
  const char* name;
  AffineSpec spec;
};
void PrintTo(const AwqCase& c, std::ostream* os) { *os << c.name; }

class AwqVsRtn : public ::testing::TestWithParam<AwqCase> {};

TEST_P(AwqVsRtn, LowerLayerOutputError) {
  const AwqLayer& l = layer();
  const AwqCase& c = GetParam();
  auto rtn = quantize_rtn(l.w.data(), l.rows, l.cols, c.spec);
  auto awq = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, c.spec);
  ASSERT_TRUE(rtn.ok());
  ASSERT_TRUE(awq.ok()) << awq.status().message();
  const double e_rtn = testdata::output_error(l.x, l.n, l.w, *rtn);
  const auto w_eff = awq_effective_weights(*awq);
  const double e_awq = layer_output_error(l.x.data(), l.n, l.w.data(), w_eff.data(), l.rows, l.cols);
  int clipped = 0;
  for (float r : awq->clip_ratios) clipped += r < 1.0f;
  std::printf("[ info     ] %-14s output error  RTN %.4e  AWQ %.4e  (ratio %.3f, alpha %.2f, %d/%zu groups clipped)\n",
              c.name, e_rtn, e_awq, e_awq / e_rtn, awq->alpha, clipped, awq->clip_ratios.size());
  EXPECT_LT(e_awq, 0.9 * e_rtn);
  // The reported errors are the real ones.
  EXPECT_NEAR(awq->output_error, e_awq, 1e-4 * e_awq);  // f32 matmul vs double
  EXPECT_NEAR(awq->rtn_error, e_rtn, 1e-4 * e_rtn);
  EXPECT_EQ(awq->clip_ratios.size(), awq->quantized.scales.size());
  for (float r : awq->clip_ratios) {
    EXPECT_GE(r, 0.5f - 1e-6f);
    EXPECT_LE(r, 1.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(, AwqVsRtn,
                         ::testing::Values(AwqCase{"4bit_channel", spec_of(4, AffineSpec::kChannel, 0)},
                                           AwqCase{"4bit_g128", spec_of(4, AffineSpec::kGroup, 128)},
                                           AwqCase{"4bit_g32", spec_of(4, AffineSpec::kGroup, 32)},
                                           AwqCase{"4bit_g32_sym", spec_of(4, AffineSpec::kGroup, 32, true)},
                                           AwqCase{"3bit_g32", spec_of(3, AffineSpec::kGroup, 32)}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Awq, ScaledInputsTimesQuantizedWeightsGiveTheEffectiveOutput) {
  const AwqLayer& l = layer();
  auto awq = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, spec_of(4, AffineSpec::kGroup, 32));
  ASSERT_TRUE(awq.ok());
  ASSERT_EQ(static_cast<int64_t>(awq->scales.size()), l.cols);
  for (float s : awq->scales) ASSERT_GT(s, 0.0f);
  EXPECT_GT(awq->alpha, 0.0f);  // outlier channels: some scaling must help
  const auto q = dequantize(awq->quantized);
  const auto w_eff = awq_effective_weights(*awq);
  for (int64_t i = 0; i < 8; ++i) {
    for (int64_t r = 0; r < l.rows; ++r) {
      double y_scaled = 0.0, y_eff = 0.0, mag = 0.0;
      for (int64_t c = 0; c < l.cols; ++c) {
        const double xc = l.x[i * l.cols + c];
        y_scaled += (xc / awq->scales[c]) * q[r * l.cols + c];  // (x / s) · Q^T
        y_eff += xc * w_eff[r * l.cols + c];                      // x · W_eff^T
        mag += std::fabs(xc * w_eff[r * l.cols + c]);
      }
      EXPECT_NEAR(y_scaled, y_eff, 1e-5 * mag + 1e-9);
    }
  }
}

TEST(Awq, AlphaZeroWithoutClippingIsRtn) {
  const AwqLayer& l = layer();
  AwqOptions opt;
  opt.grid = 1;
  opt.clip_search = false;
  // Inputs with equal magnitude everywhere: mean |x| is constant, so every alpha gives s = 1.
  std::vector<float> x(static_cast<size_t>(l.n * l.cols), 1.0f);
  const AffineSpec spec = spec_of(4, AffineSpec::kGroup, 64);
  auto awq = quantize_awq(l.w.data(), l.rows, l.cols, x.data(), l.n, spec, opt);
  auto rtn = quantize_rtn(l.w.data(), l.rows, l.cols, spec);
  ASSERT_TRUE(awq.ok() && rtn.ok());
  for (float s : awq->scales) EXPECT_FLOAT_EQ(s, 1.0f);
  EXPECT_EQ(awq->quantized.codes, rtn->codes);
  // Per-tensor granularity runs the scale search but no clipping.
  auto t = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, spec_of(8, AffineSpec::kTensor, 0));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->clip_ratios, std::vector<float>{1.0f});
  EXPECT_LE(t->output_error, t->rtn_error);
}

TEST(Awq, BadParametersHaveSpecificErrors) {
  const AwqLayer& l = layer();
  const AffineSpec g32 = spec_of(4, AffineSpec::kGroup, 32);
  auto r = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), 0, g32);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "empty calibration: AWQ needs at least one activation row");
  auto x = l.x;
  x[3 * l.cols + 7] = INFINITY;
  r = quantize_awq(l.w.data(), l.rows, l.cols, x.data(), l.n, g32);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "calibration activations contain Inf at row 3, column 7");
  r = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, spec_of(4, AffineSpec::kGroup, 100));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "group size 100 does not divide the row length 256");
  r = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, spec_of(2, AffineSpec::kGroup, 32));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "unsupported bit width 2 (expected 8, 4 or 3)");
  AwqOptions opt;
  opt.grid = 0;
  r = quantize_awq(l.w.data(), l.rows, l.cols, l.x.data(), l.n, g32, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "AWQ grid 0 must be >= 1");
}

}  // namespace
}  // namespace llmopt::quant
