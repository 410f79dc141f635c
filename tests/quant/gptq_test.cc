// GPTQ: the Hessian accumulator, GPTQ against RTN on LLM-like calibration data, invariance to the lazy
// block size and the thread count, dead columns and parameter errors (the NumPy reference is in
// gptq_numpy_test.cc).
#include "quant/gptq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "quant/hessian.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

using testdata::hessian_of;
using testdata::spec_of;

TEST(Hessian, MatchesTwoOverNXtX) {
  const int64_t n = 37, cols = 9;
  const auto x = testdata::gaussian(n * cols, 4);
  HessianAccumulator one(cols), parts(cols);
  ASSERT_TRUE(one.add(x.data(), n).ok());
  ASSERT_TRUE(parts.add(x.data(), 10).ok());
  ASSERT_TRUE(parts.add(x.data() + 10 * cols, 0).ok());
  ASSERT_TRUE(parts.add(x.data() + 10 * cols, n - 10).ok());
  EXPECT_EQ(parts.samples(), n);
  auto h1 = one.hessian(), h2 = parts.hessian();
  ASSERT_TRUE(h1.ok() && h2.ok());
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      double want = 0.0;
      for (int64_t s = 0; s < n; ++s) want += static_cast<double>(x[s * cols + i]) * x[s * cols + j];
      want *= 2.0 / n;
      EXPECT_NEAR((*h1)[i * cols + j], want, 1e-5 * (1 + std::fabs(want)));
      // Batches are f32 products summed in double: splitting them only moves f32 rounding.
      EXPECT_NEAR((*h1)[i * cols + j], (*h2)[i * cols + j], 1e-5 * (1 + std::fabs(want)));
    }
  }
}

TEST(Hessian, EmptyAndNonFiniteCalibrationAreErrors) {
  HessianAccumulator acc(4);
  auto h = acc.hessian();
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().message(), "empty calibration: no activation rows were added to the Hessian");
  std::vector<float> x = {1, 2, 3, NAN};
  const Status st = acc.add(x.data(), 1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "calibration activations contain NaN at row 0, column 3");
  EXPECT_EQ(acc.samples(), 0);
}

// The shared layer: 64 outputs x 256 inputs, 512 calibration rows.
struct GptqLayer {
  int64_t rows = 64, cols = 256, n = 512;
  std::vector<float> w = testdata::heavy_tailed_weights(rows, cols, 7);
  std::vector<float> x = testdata::llm_activations(n, cols, 8);
  std::vector<float> h = hessian_of(x, n, cols);
};
const GptqLayer& gptq_layer() {
  static const GptqLayer l;
  return l;
}

struct GptqCase {
  const char* name;
  AffineSpec spec;
  bool act_order;
};
void PrintTo(const GptqCase& c, std::ostream* os) { *os << c.name; }

class GptqVsRtn : public ::testing::TestWithParam<GptqCase> {};

TEST_P(GptqVsRtn, LowerLayerOutputError) {
  const GptqLayer& l = gptq_layer();
  const GptqCase& c = GetParam();
  auto rtn = quantize_rtn(l.w.data(), l.rows, l.cols, c.spec);
  GptqOptions opt;
  opt.act_order = c.act_order;
  auto gptq = quantize_gptq(l.w.data(), l.rows, l.cols, l.h, c.spec, opt);
  ASSERT_TRUE(rtn.ok());
  ASSERT_TRUE(gptq.ok()) << gptq.status().message();
  const double e_rtn = testdata::output_error(l.x, l.n, l.w, *rtn);
  const double e_gptq = testdata::output_error(l.x, l.n, l.w, *gptq);
  std::printf("[ info     ] %-18s output error  RTN %.4e  GPTQ %.4e  (ratio %.3f)\n", c.name, e_rtn, e_gptq,
              e_gptq / e_rtn);
  EXPECT_LT(e_gptq, 0.8 * e_rtn);
}

INSTANTIATE_TEST_SUITE_P(
    , GptqVsRtn,
    ::testing::Values(GptqCase{"4bit_channel", spec_of(4, AffineSpec::kChannel, 0), false},
                      GptqCase{"4bit_g128", spec_of(4, AffineSpec::kGroup, 128), false},
                      GptqCase{"4bit_g32", spec_of(4, AffineSpec::kGroup, 32), false},
                      GptqCase{"4bit_g32_sym", spec_of(4, AffineSpec::kGroup, 32, true), false},
                      GptqCase{"3bit_g32", spec_of(3, AffineSpec::kGroup, 32), false},
                      GptqCase{"4bit_channel_act", spec_of(4, AffineSpec::kChannel, 0), true},
                      GptqCase{"4bit_g128_act", spec_of(4, AffineSpec::kGroup, 128), true},
                      GptqCase{"4bit_g32_act", spec_of(4, AffineSpec::kGroup, 32), true},
                      GptqCase{"8bit_tensor", spec_of(8, AffineSpec::kTensor, 0), false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Gptq, BlockSizeAndThreadsDoNotChangeTheResult) {
  const GptqLayer& l = gptq_layer();
  for (bool act : {false, true}) {
    const AffineSpec spec = spec_of(4, AffineSpec::kGroup, 32);
    GptqOptions base;
    base.act_order = act;
    auto ref = quantize_gptq(l.w.data(), l.rows, l.cols, l.h, spec, base);
    ASSERT_TRUE(ref.ok());
    const auto dref = dequantize(*ref);
    ThreadPool pool(2);
    for (int block : {1, 16, 100, 256, 1000}) {
      GptqOptions opt = base;
      opt.block_size = block;
      opt.pool = block == 16 ? &pool : nullptr;
      auto got = quantize_gptq(l.w.data(), l.rows, l.cols, l.h, spec, opt);
      ASSERT_TRUE(got.ok());
      int64_t diff = 0;
      for (size_t i = 0; i < got->codes.size(); ++i) {
        diff += got->codes[i] != ref->codes[i];
        EXPECT_LE(std::abs(got->codes[i] - ref->codes[i]), 1);
      }
      std::printf("[ info     ] act_order %d block %4d: %lld codes differ from block 128, max |dw_hat| %.1e\n", act,
                  block, static_cast<long long>(diff), [&] {
                    const auto d = dequantize(*got);
                    double m = 0.0;
                    for (size_t i = 0; i < d.size(); ++i) m = std::max(m, std::fabs(double(d[i]) - dref[i]));
                    return m;
                  }());
      // Same float operations in the same order: equal up to (at most rare) rounding differences.
      EXPECT_LE(diff, static_cast<int64_t>(got->codes.size() / 1000)) << "block " << block;
      const auto d = dequantize(*got);
      double max_diff = 0.0;
      for (size_t i = 0; i < d.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(d[i]) - dref[i]));
      if (diff == 0) {
        EXPECT_LE(max_diff, 1e-6) << "block " << block;
      }
    }
  }
}

TEST(Gptq, DeadColumnsAreZeroed) {
  const GptqLayer& l = gptq_layer();
  auto x = l.x;
  for (int64_t s = 0; s < l.n; ++s) x[s * l.cols + 3] = x[s * l.cols + 200] = 0.0f;
  const auto h = hessian_of(x, l.n, l.cols);
  ASSERT_EQ(h[3 * l.cols + 3], 0.0f);
  for (bool act : {false, true}) {
    GptqOptions opt;
    opt.act_order = act;
    auto t = quantize_gptq(l.w.data(), l.rows, l.cols, h, spec_of(4, AffineSpec::kGroup, 32), opt);
    ASSERT_TRUE(t.ok()) << t.status().message();
    const auto d = dequantize(*t);
    for (int64_t r = 0; r < l.rows; ++r) {
      EXPECT_EQ(d[r * l.cols + 3], 0.0f);
      EXPECT_EQ(d[r * l.cols + 200], 0.0f);
    }
    for (float v : d) ASSERT_TRUE(std::isfinite(v));
    auto rtn = quantize_rtn(l.w.data(), l.rows, l.cols, spec_of(4, AffineSpec::kGroup, 32));
    EXPECT_LT(testdata::output_error(x, l.n, l.w, *t), testdata::output_error(x, l.n, l.w, *rtn));
  }
}

TEST(Gptq, BadParametersHaveSpecificErrors) {
  const GptqLayer& l = gptq_layer();
  const AffineSpec g32 = spec_of(4, AffineSpec::kGroup, 32);
  auto expect_error = [&](const Result<AffineTensor>& r, const std::string& msg) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), msg);
  };
  expect_error(quantize_gptq(l.w.data(), l.rows, l.cols, {}, g32), "empty Hessian (no calibration data)");
  expect_error(quantize_gptq(l.w.data(), l.rows, l.cols, std::vector<float>(100, 1.0f), g32),
               "Hessian has 100 values, expected 256 x 256 for 256 input columns");
  expect_error(quantize_gptq(l.w.data(), l.rows, l.cols, l.h, spec_of(5, AffineSpec::kChannel, 0)),
               "unsupported bit width 5 (expected 8, 4 or 3)");
  expect_error(quantize_gptq(l.w.data(), l.rows, l.cols, l.h, spec_of(4, AffineSpec::kGroup, 96)),
               "group size 96 does not divide the row length 256");
  auto w = l.w;
  w[5] = NAN;
  expect_error(quantize_gptq(w.data(), l.rows, l.cols, l.h, g32), "weights contain NaN at row 0, column 5");
  GptqOptions opt;
  opt.block_size = 0;
  expect_error(quantize_gptq(l.w.data(), l.rows, l.cols, l.h, g32, opt), "block size 0 must be >= 1");
  opt.block_size = 128;
  opt.damp_percent = -0.1;
  auto r = quantize_gptq(l.w.data(), l.rows, l.cols, l.h, g32, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("damp_percent"), std::string::npos);
  // Not positive definite: a rank-1 Hessian without dampening.
  std::vector<float> h1(static_cast<size_t>(l.cols * l.cols), 1.0f);
  opt.damp_percent = 0.0;
  r = quantize_gptq(l.w.data(), l.rows, l.cols, h1, g32, opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not positive definite"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace llmopt::quant
