// Round-to-nearest affine quantization: the error bound of every scheme, packing, edge cases, the
// ordering of granularities on heavy-tailed weights, and parameter errors.
#include "quant/affine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <tuple>

#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

AffineSpec make_spec(int bits, AffineSpec::Granularity g, int group_size, bool sym) {
  AffineSpec s;
  s.bits = bits;
  s.granularity = g;
  s.group_size = group_size;
  s.symmetric = sym;
  return s;
}

std::string spec_name(const AffineSpec& s) {
  return std::to_string(s.bits) + "bit_" + granularity_name(s.granularity) +
         (s.granularity == AffineSpec::kGroup ? std::to_string(s.group_size) : "") + (s.symmetric ? "_sym" : "_asym");
}

// Checks |w - w_hat| <= scale / 2 (plus float rounding) for every element, and the code ranges.
void expect_within_bound(const std::vector<float>& w, int64_t rows, int64_t cols, const AffineSpec& spec) {
  SCOPED_TRACE(spec_name(spec) + " " + std::to_string(rows) + "x" + std::to_string(cols));
  auto t = quantize_rtn(w.data(), rows, cols, spec);
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(static_cast<int64_t>(t->scales.size()), group_count(spec, rows, cols));
  ASSERT_EQ(t->zeros.size(), t->scales.size());
  const std::vector<float> d = dequantize(*t);
  const int32_t qmin = code_min(spec.bits, spec.symmetric), qmax = code_max(spec.bits, spec.symmetric);
  for (size_t g = 0; g < t->zeros.size(); ++g) {
    if (spec.symmetric) {
      EXPECT_EQ(t->zeros[g], 0);
    }
    EXPECT_GE(t->zeros[g], qmin);
    EXPECT_LE(t->zeros[g], qmax);
  }
  int bad = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const float scale = t->scales[group_of(spec, cols, r, c)];
      const double bound = 0.5 * scale + 1e-6 * (std::fabs(w[i]) + scale) + 1e-12;
      if (std::fabs(w[i] - d[i]) > bound || t->codes[i] < qmin || t->codes[i] > qmax || !std::isfinite(d[i])) {
        if (++bad <= 3) {
          ADD_FAILURE() << "(" << r << ", " << c << "): w " << w[i] << " w_hat " << d[i] << " scale " << scale
                        << " code " << t->codes[i];
        }
      }
    }
  }
  EXPECT_EQ(bad, 0);
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(RoundTrip, ErrorWithinHalfStepForEveryGranularityAndShape) {
  const auto [bits, sym] = GetParam();
  // Odd shapes for tensor/channel; group sizes need cols divisible by them.
  const std::vector<std::pair<int64_t, int64_t>> odd = {{1, 1}, {5, 37}, {3, 101}, {17, 64}};
  const std::vector<std::pair<int64_t, int64_t>> grouped = {{1, 64}, {7, 192}, {3, 320}};
  uint32_t seed = 1;
  for (auto g : {AffineSpec::kTensor, AffineSpec::kChannel}) {
    for (auto [rows, cols] : odd) {
      auto w = testdata::heavy_tailed_weights(rows, cols, seed++, cols > 4 ? 2 : 0);
      expect_within_bound(w, rows, cols, make_spec(bits, g, 0, sym));
    }
  }
  for (int gs : {32, 64}) {
    for (auto [rows, cols] : grouped) {
      auto w = testdata::heavy_tailed_weights(rows, cols, seed++);
      // Some all-positive and all-negative groups too (the asymmetric range must still hold 0).
      for (int64_t c = 0; c < gs; ++c) w[c] = std::fabs(w[c]) + 0.5f;
      if (rows > 1) {
        for (int64_t c = 0; c < gs; ++c) w[cols + c] = -std::fabs(w[cols + c]) - 0.5f;
      }
      expect_within_bound(w, rows, cols, make_spec(bits, AffineSpec::kGroup, gs, sym));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(, RoundTrip, ::testing::Combine(::testing::Values(8, 4, 3), ::testing::Bool()),
                         [](const auto& info) {
                           return std::to_string(std::get<0>(info.param)) + "bit" +
                                  (std::get<1>(info.param) ? "_sym" : "_asym");
                         });

TEST(Affine, FormulasOfTheSpec) {
  // Symmetric 4 bit: scale = max|w| / 7 = 0.125 (all values exact in binary).
  const std::vector<float> w = {-0.875f, 0.4375f, 0.125f, 0.0f};
  auto t = quantize_rtn(w.data(), 1, 4, make_spec(4, AffineSpec::kTensor, 0, true));
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->scales[0], 0.125f);
  EXPECT_EQ(t->codes, (std::vector<int16_t>{-7, 4, 1, 0}));  // 3.5 rounds half to even
  // Asymmetric 4 bit: range [-0.625, 0.3125] -> scale 0.9375 / 15 = 0.0625, zero = round(10) = 10.
  const std::vector<float> v = {-0.625f, 0.3125f, 0.0625f, 0.0f};
  auto a = quantize_rtn(v.data(), 1, 4, make_spec(4, AffineSpec::kTensor, 0, false));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->scales[0], 0.0625f);
  EXPECT_EQ(a->zeros[0], 10);
  EXPECT_EQ(a->codes, (std::vector<int16_t>{0, 15, 11, 10}));
  EXPECT_EQ(dequantize(*a), v);
}

TEST(Affine, AllZeroGroupsGiveZeroScaleAndNoNaN) {
  std::vector<float> w(4 * 64, 0.0f);
  for (int64_t c = 32; c < 64; ++c) w[c] = 0.01f * static_cast<float>(c);  // only group 1 is nonzero
  for (bool sym : {true, false}) {
    for (int bits : {8, 4, 3}) {
      auto t = quantize_rtn(w.data(), 4, 64, make_spec(bits, AffineSpec::kGroup, 32, sym));
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t->scales[0], 0.0f);
      EXPECT_EQ(t->zeros[0], 0);
      EXPECT_GT(t->scales[1], 0.0f);
      const auto d = dequantize(*t);
      for (size_t i = 0; i < d.size(); ++i) {
        ASSERT_TRUE(std::isfinite(d[i]));
        if (w[i] == 0.0f) {
          EXPECT_EQ(d[i], 0.0f) << i;
        }
      }
    }
    const std::vector<float> zeros(10, 0.0f);
    auto t = quantize_rtn(zeros.data(), 2, 5, make_spec(4, AffineSpec::kChannel, 0, sym));
    ASSERT_TRUE(t.ok());
    for (float d : dequantize(*t)) EXPECT_EQ(d, 0.0f);
  }
}

TEST(Affine, PackAndUnpack) {
  for (bool sym : {true, false}) {
    for (int bits : {8, 4, 3}) {
      const auto w = testdata::heavy_tailed_weights(3, 7, 5);  // 21 codes: odd count
      auto t = quantize_rtn(w.data(), 3, 7, make_spec(bits, AffineSpec::kChannel, 0, sym));
      ASSERT_TRUE(t.ok());
      const auto packed = t->pack();
      EXPECT_EQ(packed.size(), bits == 4 ? 11u : 21u);
      EXPECT_EQ(unpack_codes(packed, 21, bits, sym), t->codes) << bits << " " << sym;
    }
  }
  // Nibble order: the lower index goes in the low nibble.
  AffineTensor t;
  t.spec = make_spec(4, AffineSpec::kTensor, 0, false);
  t.codes = {1, 2, 15};
  EXPECT_EQ(t.pack(), (std::vector<uint8_t>{0x21, 0x0F}));
  t.spec.symmetric = true;
  t.codes = {-1, 7, -7};
  EXPECT_EQ(t.pack(), (std::vector<uint8_t>{0x7F, 0x09}));
}

TEST(Affine, ClippingAndColumnHelpers) {
  const std::vector<float> g = {-1.0f, 0.5f, 0.25f, 0.9f};
  const GroupParams full = group_params(g.data(), 4, 4, true);
  const GroupParams half = group_params(g.data(), 4, 4, true, 0.5f);
  EXPECT_FLOAT_EQ(full.scale, 1.0f / 7);
  EXPECT_FLOAT_EQ(half.scale, 0.5f / 7);
  EXPECT_EQ(quantize_value(-1.0f, half, 4, true), -7);  // clamped
  EXPECT_EQ(quantize_value(0.9f, half, 4, true), 7);
  const GroupParams asym = group_params(g.data(), 4, 3, false, 0.5f);
  EXPECT_FLOAT_EQ(asym.scale, (0.45f + 0.5f) / 7);
  // quantize_column: strided access, one parameter set per element.
  const std::vector<float> m = {0.3f, 9.0f, -0.2f, 9.0f, 0.05f, 9.0f};
  const GroupParams ps[3] = {{0.1f, 0}, {0.1f, 8}, {0.0f, 3}};
  int16_t codes[3];
  float deq[3];
  quantize_column(m.data(), 3, 2, ps, 4, false, codes, deq);
  EXPECT_EQ(codes[0], 3);
  EXPECT_EQ(codes[1], 6);
  EXPECT_EQ(codes[2], 3);
  EXPECT_FLOAT_EQ(deq[0], 0.3f);
  EXPECT_FLOAT_EQ(deq[1], -0.2f);
  EXPECT_EQ(deq[2], 0.0f);
  // quantize_group: the clipped group's values stay within the shrunk range.
  int16_t gc[4];
  float gd[4];
  const GroupParams gp = quantize_group(g.data(), 4, 4, true, 0.5f, gc, gd);
  EXPECT_FLOAT_EQ(gp.scale, 0.5f / 7);
  EXPECT_EQ(gc[0], -7);
  EXPECT_FLOAT_EQ(gd[0], -0.5f);
  EXPECT_EQ(gc[3], 7);
  EXPECT_NEAR(gd[1], 0.5f, 0.5f * gp.scale);
  EXPECT_NEAR(gd[2], 0.25f, 0.5f * gp.scale * (1 + 1e-5f));
  // Clipped RTN with all ratios 1 equals plain RTN.
  const auto w = testdata::heavy_tailed_weights(4, 64, 9);
  const AffineSpec spec = make_spec(4, AffineSpec::kGroup, 32, false);
  auto a = quantize_rtn(w.data(), 4, 64, spec);
  auto b = quantize_rtn_clipped(w.data(), 4, 64, spec, std::vector<float>(8, 1.0f));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->codes, b->codes);
  EXPECT_EQ(a->scales, b->scales);
}

double weight_mse(const std::vector<float>& w, int64_t rows, int64_t cols, const AffineSpec& spec) {
  auto t = quantize_rtn(w.data(), rows, cols, spec);
  EXPECT_TRUE(t.ok());
  const auto d = dequantize(*t);
  double e = 0.0;
  for (size_t i = 0; i < w.size(); ++i) e += (w[i] - d[i]) * static_cast<double>(w[i] - d[i]);
  return e / static_cast<double>(w.size());
}

TEST(Affine, FinerGranularityIsBetterOnHeavyTailedWeights) {
  const int64_t rows = 64, cols = 512;
  const auto w = testdata::heavy_tailed_weights(rows, cols, 42, 3);
  for (bool sym : {true, false}) {
    for (int bits : {8, 4, 3}) {
      const double g32 = weight_mse(w, rows, cols, make_spec(bits, AffineSpec::kGroup, 32, sym));
      const double g128 = weight_mse(w, rows, cols, make_spec(bits, AffineSpec::kGroup, 128, sym));
      const double ch = weight_mse(w, rows, cols, make_spec(bits, AffineSpec::kChannel, 0, sym));
      const double ts = weight_mse(w, rows, cols, make_spec(bits, AffineSpec::kTensor, 0, sym));
      std::printf("[ info     ] %d-bit %s weight MSE: g32 %.3e  g128 %.3e  channel %.3e  tensor %.3e\n", bits,
                  sym ? "sym " : "asym", g32, g128, ch, ts);
      EXPECT_LT(g32, g128);
      EXPECT_LT(g128, ch);
      EXPECT_LT(ch, ts);
    }
  }
}

TEST(Affine, BadParametersHaveSpecificErrors) {
  const auto w = testdata::heavy_tailed_weights(2, 128, 3);
  auto bits5 = quantize_rtn(w.data(), 2, 128, make_spec(5, AffineSpec::kChannel, 0, true));
  ASSERT_FALSE(bits5.ok());
  EXPECT_EQ(bits5.status().message(), "unsupported bit width 5 (expected 8, 4 or 3)");
  auto g48 = quantize_rtn(w.data(), 2, 128, make_spec(4, AffineSpec::kGroup, 48, true));
  ASSERT_FALSE(g48.ok());
  EXPECT_EQ(g48.status().message(), "group size 48 does not divide the row length 128");
  auto g0 = quantize_rtn(w.data(), 2, 128, make_spec(4, AffineSpec::kGroup, 0, true));
  ASSERT_FALSE(g0.ok());
  EXPECT_EQ(g0.status().message(), "group size 0 must be positive");
  auto empty = quantize_rtn(w.data(), 0, 128, make_spec(4, AffineSpec::kChannel, 0, true));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "empty weight matrix [0 x 128]");
  auto nan_w = w;
  nan_w[128 + 2] = std::nanf("");
  auto nan = quantize_rtn(nan_w.data(), 2, 128, make_spec(4, AffineSpec::kChannel, 0, true));
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().message(), "weights contain NaN at row 1, column 2");
  nan_w[128 + 2] = INFINITY;
  auto inf = quantize_rtn(nan_w.data(), 2, 128, make_spec(4, AffineSpec::kChannel, 0, true));
  ASSERT_FALSE(inf.ok());
  EXPECT_EQ(inf.status().message(), "weights contain Inf at row 1, column 2");
  const AffineSpec g32 = make_spec(4, AffineSpec::kGroup, 32, true);
  auto count = quantize_rtn_clipped(w.data(), 2, 128, g32, std::vector<float>(3, 1.0f));
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.status().message(), "expected 8 clipping ratios, got 3");
  auto ratio = quantize_rtn_clipped(w.data(), 2, 128, g32, std::vector<float>(8, 1.5f));
  ASSERT_FALSE(ratio.ok());
  EXPECT_NE(ratio.status().message().find("not in (0, 1]"), std::string::npos);
}

}  // namespace
}  // namespace llmopt::quant
