// AdamW, the learning-rate schedule and gradient clipping against values computed by hand.
#include "train/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llmopt::train {
namespace {

// Two tensors: a 2x2 matrix (decayed) and a 2-vector bias (not decayed).
ParamLayout two_tensor_layout() {
  ParamLayout L;
  L.tensors.push_back({"w.weight", {2, 2}, 0, 4, true});
  L.tensors.push_back({"b.bias", {2}, 4, 2, false});
  L.total = 6;
  return L;
}

TEST(TrainAdamW, TwoStepsByHand) {
  const ParamLayout L = two_tensor_layout();
  AdamWConfig cfg;  // 0.9, 0.95, 1e-8, wd 0.1
  AdamWState st;
  st.m.assign(6, 0.0f);
  st.v.assign(6, 0.0f);
  std::vector<float> p = {0.5f, -1.0f, 2.0f, 0.0f, 0.25f, -0.75f};
  const std::vector<float> g1 = {0.1f, -0.2f, 0.0f, 3.0f, 1.0f, -0.5f};
  const std::vector<float> g2 = {-0.3f, 0.1f, 0.2f, 1.0f, 0.5f, 0.5f};
  const float lr1 = 0.01f, lr2 = 0.02f;

  // Step 1: m = 0.1 g, v = 0.05 g², m̂ = g, v̂ = g², so the step is lr · g / (|g| + eps).
  std::vector<double> want(6);
  for (int i = 0; i < 6; ++i) {
    const double decay = i < 4 ? 1.0 - 0.01 * 0.1 : 1.0;
    const double g = g1[i];
    want[i] = p[i] * decay - 0.01 * g / (std::fabs(g) + 1e-8);
  }
  adamw_update(L, cfg, lr1, g1.data(), p.data(), st);
  EXPECT_EQ(st.t, 1);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], want[i], 1e-6) << i;
  // Concrete values: w[0] = 0.5·0.999 - 0.01 = 0.4895; w[3] (g = 3) = 0 - 0.01; bias[0] = 0.25 - 0.01.
  EXPECT_NEAR(p[0], 0.4895, 1e-6);
  EXPECT_NEAR(p[3], -0.01, 1e-6);
  EXPECT_NEAR(p[4], 0.24, 1e-6);
  EXPECT_NEAR(p[2], 2.0 * 0.999, 1e-6);  // zero gradient: only the decay moves it

  // Step 2 from the formulas, bias corrections 1 - 0.9² = 0.19 and 1 - 0.95² = 0.0975.
  for (int i = 0; i < 6; ++i) {
    const double m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
    const double v = 0.95 * (0.05 * g1[i] * g1[i]) + 0.05 * g2[i] * g2[i];
    const double mhat = m / 0.19, vhat = v / 0.0975;
    const double decay = i < 4 ? 1.0 - 0.02 * 0.1 : 1.0;
    want[i] = p[i] * decay - 0.02 * mhat / (std::sqrt(vhat) + 1e-8);
    EXPECT_NEAR(st.m[i], 0.1 * g1[i], 1e-6);
  }
  adamw_update(L, cfg, lr2, g2.data(), p.data(), st);
  EXPECT_EQ(st.t, 2);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(p[i], want[i], 2e-6) << i;
}

TEST(TrainLrSchedule, WarmupThenCosineToTenPercent) {
  const LrSchedule s{1e-3f, 10, 110, 0.1f};
  EXPECT_FLOAT_EQ(s.at(0), 1e-4f);  // (0 + 1) / 10 of the peak
  EXPECT_FLOAT_EQ(s.at(4), 5e-4f);
  EXPECT_FLOAT_EQ(s.at(9), 1e-3f);     // warm-up reaches the peak
  EXPECT_FLOAT_EQ(s.at(10), 1e-3f);    // cosine starts at the peak
  EXPECT_FLOAT_EQ(s.at(60), 5.5e-4f);  // halfway: 1e-4 + 0.9e-3 / 2
  EXPECT_FLOAT_EQ(s.at(35), static_cast<float>(1e-4 + 0.9e-3 * 0.5 * (1 + std::cos(M_PI * 0.25))));
  EXPECT_FLOAT_EQ(s.at(110), 1e-4f);  // the end: 10% of the peak
  EXPECT_FLOAT_EQ(s.at(500), 1e-4f);  // and it stays there
  for (int64_t i = 11; i <= 110; ++i) EXPECT_LE(s.at(i), s.at(i - 1));

  const LrSchedule no_warmup{2e-3f, 0, 100, 0.1f};
  EXPECT_FLOAT_EQ(no_warmup.at(0), 2e-3f);
}

TEST(TrainClip, ScalesToMaxNorm) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), g.size(), 1.0), 5.0);
  EXPECT_NEAR(g[0], 0.6, 1e-6);
  EXPECT_NEAR(g[1], 0.8, 1e-6);
  std::vector<float> small = {0.3f, 0.4f};
  EXPECT_NEAR(clip_grad_norm(small.data(), small.size(), 1.0), 0.5, 1e-7);
  EXPECT_EQ(small[0], 0.3f);  // below the limit: untouched
  std::vector<float> off = {30.0f, 40.0f};
  clip_grad_norm(off.data(), off.size(), 0.0);
  EXPECT_EQ(off[1], 40.0f);
}

}  // namespace
}  // namespace llmopt::train
