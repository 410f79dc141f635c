// Quality metrics: KL divergence (zero for identical logits, a hand-computed example), top-1 agreement,
// layer output error.
#include "quant/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace llmopt::quant {
namespace {

TEST(Metrics, KlOfIdenticalLogitsIsZero) {
  const std::vector<float> a = {1.0f, -2.0f, 0.5f, 30.0f, 29.0f, -100.0f};
  auto kl = mean_kl_divergence(a.data(), a.data(), 2, 3);
  ASSERT_TRUE(kl.ok());
  EXPECT_EQ(*kl, 0.0);
  // Adding a constant to a row does not change its distribution.
  std::vector<float> b = a;
  for (int i = 0; i < 3; ++i) b[i] += 5.0f;
  kl = mean_kl_divergence(a.data(), b.data(), 2, 3);
  ASSERT_TRUE(kl.ok());
  EXPECT_NEAR(*kl, 0.0, 1e-12);
}

TEST(Metrics, KlMatchesHandComputedTwoTokenExample) {
  // Token 1: P = softmax(0, ln 3) = (1/4, 3/4), Q = (1/2, 1/2):
  //   KL = 1/4 ln(1/2) + 3/4 ln(3/2).
  // Token 2: P = (1/2, 1/2), Q = softmax(ln 7, 0) = (7/8, 1/8):
  //   KL = 1/2 ln(4/7) + 1/2 ln 4.
  const float ln3 = static_cast<float>(std::log(3.0));
  const std::vector<float> base = {0.0f, ln3, 0.0f, 0.0f};
  const std::vector<float> var = {0.0f, 0.0f, static_cast<float>(std::log(7.0)), 0.0f};
  const double k1 = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  const double k2 = 0.5 * std::log(4.0 / 7.0) + 0.5 * std::log(4.0);
  auto kl = mean_kl_divergence(base.data(), var.data(), 2, 2);
  ASSERT_TRUE(kl.ok());
  EXPECT_NEAR(*kl, (k1 + k2) / 2, 1e-7);
  // Not symmetric: KL(Q || P) differs.
  auto rev = mean_kl_divergence(var.data(), base.data(), 2, 2);
  ASSERT_TRUE(rev.ok());
  const double r1 = 0.5 * std::log(2.0) + 0.5 * std::log(2.0 / 3.0);
  const double r2 = 0.875 * std::log(7.0 / 4.0) + 0.125 * std::log(0.25);
  EXPECT_NEAR(*rev, (r1 + r2) / 2, 1e-7);
  auto top1 = same_top1_fraction(base.data(), var.data(), 2, 2);
  ASSERT_TRUE(top1.ok());
  EXPECT_EQ(*top1, 0.5);  // token 1: 1 vs 0 (a tie: the first index); token 2: 0 (a tie) vs 0
}

TEST(Metrics, TopOneAndErrors) {
  const std::vector<float> a = {0, 1, 2, 5, 4, 3, 1, 1, 0};
  const std::vector<float> b = {0, 1, 3, 5, 6, 3, 2, 1, 0};
  auto f = same_top1_fraction(a.data(), b.data(), 3, 3);
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(*f, 2.0 / 3.0);  // argmax per row: 2 vs 2, 0 vs 1, 0 vs 0
  auto e = mean_kl_divergence(a.data(), b.data(), 0, 3);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "empty logits [0 x 3]");
  std::vector<float> bad = a;
  bad[4] = NAN;
  e = mean_kl_divergence(a.data(), bad.data(), 3, 3);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().message(), "variant logits contain NaN at row 1, column 1");
}

TEST(Metrics, LayerOutputError) {
  // x = [[1, 2]], w = [[1, 1], [0, 1]], w_hat = [[1, 0], [0, 0]]: x d^T = [2, 2] -> 8.
  const float x[2] = {1, 2};
  const float w[4] = {1, 1, 0, 1};
  const float wh[4] = {1, 0, 0, 0};
  EXPECT_DOUBLE_EQ(layer_output_error(x, 1, w, wh, 2, 2), 8.0);
  EXPECT_EQ(layer_output_error(x, 1, w, w, 2, 2), 0.0);
}

}  // namespace
}  // namespace llmopt::quant
