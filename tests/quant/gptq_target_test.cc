// GPTQ's asymmetric target (quant/gptq_target.h): the normal equations of the ridge objective checked
// directly in double, identity when the inputs agree, thread invariance, parameter errors, and the use it
// is for: GPTQ on the target reproduces the unquantized layer's outputs better than GPTQ on the weights.
#include "quant/gptq_target.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "quant/gguf_grid.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

constexpr int64_t kN = 256, kCols = 64, kRows = 24;

// X (the unquantized model's inputs) and X~ (drifted: the quantized layers before add error that is
// correlated with the input, plus a little noise).
struct Inputs {
  std::vector<float> x, xq;
};
Inputs drifted_inputs() {
  Inputs in;
  in.x = testdata::llm_activations(kN, kCols, 11);
  const auto noise = testdata::gaussian(kN * kCols, 12, 0.05f);
  in.xq.resize(in.x.size());
  for (int64_t s = 0; s < kN; ++s) {
    for (int64_t c = 0; c < kCols; ++c) {
      const float gain = 1.0f + 0.04f * static_cast<float>((c * 7) % 5 - 2);  // per-channel drift
      in.xq[s * kCols + c] = gain * in.x[s * kCols + c] + 0.1f * in.x[s * kCols + (c + 1) % kCols] +
                             noise[s * kCols + c];
    }
  }
  return in;
}

// || X~ q^T - X w^T ||^2 (F), in double.
double output_error(const Inputs& in, const std::vector<float>& q, const std::vector<float>& w) {
  double e = 0.0;
  for (int64_t s = 0; s < kN; ++s) {
    for (int64_t r = 0; r < kRows; ++r) {
      double a = 0.0, b = 0.0;
      for (int64_t c = 0; c < kCols; ++c) {
        a += static_cast<double>(in.xq[s * kCols + c]) * q[r * kCols + c];
        b += static_cast<double>(in.x[s * kCols + c]) * w[r * kCols + c];
      }
      e += (a - b) * (a - b);
    }
  }
  return e;
}

TEST(GptqTarget, SolvesTheRidgeNormalEquations) {
  const Inputs in = drifted_inputs();
  const auto w = testdata::heavy_tailed_weights(kRows, kCols, 13);
  const double damp = 0.01;
  auto m = gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, testdata::hessian_of(in.xq, kN, kCols), damp);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->size(), static_cast<size_t>(kCols * kCols));
  std::vector<float> t = w;
  apply_target_map(t.data(), kRows, kCols, *m);
  // lambda = damp * mean(diag X~^T X~)
  double lambda = 0.0;
  for (int64_t s = 0; s < kN; ++s) {
    for (int64_t c = 0; c < kCols; ++c) lambda += static_cast<double>(in.xq[s * kCols + c]) * in.xq[s * kCols + c];
  }
  lambda *= damp / kCols;
  // Gradient of || X~ t^T - X w^T ||^2 + lambda || t - w ||^2 in t, per row r and column j:
  // sum_s X~_sj (X~_s . t_r - X_s . w_r) + lambda (t_rj - w_rj) = 0.
  for (int64_t r = 0; r < kRows; ++r) {
    std::vector<double> resid(kN);
    for (int64_t s = 0; s < kN; ++s) {
      double a = 0.0, b = 0.0;
      for (int64_t c = 0; c < kCols; ++c) {
        a += static_cast<double>(in.xq[s * kCols + c]) * t[r * kCols + c];
        b += static_cast<double>(in.x[s * kCols + c]) * w[r * kCols + c];
      }
      resid[s] = a - b;
    }
    for (int64_t j = 0; j < kCols; ++j) {
      double g = lambda * (static_cast<double>(t[r * kCols + j]) - w[r * kCols + j]), scale = 0.0;
      for (int64_t s = 0; s < kN; ++s) {
        g += in.xq[s * kCols + j] * resid[s];
        scale += std::fabs(in.xq[s * kCols + j] * resid[s]);
      }
      // The products are f32 (as GPTQ's reference computes H) on inputs with 30x outlier channels: the
      // gradient cancels to 2e-3 of the magnitude of its terms (a wrong target leaves O(1) of it).
      EXPECT_LE(std::fabs(g), 2e-3 * scale + 1e-6) << "row " << r << " col " << j;
    }
  }
  // And the target moved: the drift is not something w itself compensates.
  double moved = 0.0;
  for (size_t i = 0; i < w.size(); ++i) moved = std::max(moved, std::fabs(static_cast<double>(t[i]) - w[i]));
  EXPECT_GT(moved, 1e-3);
}

TEST(GptqTarget, SameInputsLeaveTheWeights) {
  const auto x = testdata::llm_activations(kN, kCols, 21);
  auto m = gptq_target_map(x.data(), x.data(), kN, kCols, testdata::hessian_of(x, kN, kCols), 0.01);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->empty());
}

TEST(GptqTarget, ThreadsGiveTheSameMap) {
  const Inputs in = drifted_inputs();
  ThreadPool pool(2);
  const auto h = testdata::hessian_of(in.xq, kN, kCols);
  auto one = gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, h, 0.01);
  auto two = gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, h, 0.01, &pool);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(*one, *two);
  auto w1 = testdata::heavy_tailed_weights(kRows, kCols, 22), w2 = w1;
  apply_target_map(w1.data(), kRows, kCols, *one);
  apply_target_map(w2.data(), kRows, kCols, *one, &pool);
  EXPECT_EQ(w1, w2);
}

TEST(GptqTarget, BadInputsAreErrors) {
  const Inputs in = drifted_inputs();
  const auto h = testdata::hessian_of(in.xq, kN, kCols);
  EXPECT_FALSE(gptq_target_map(in.xq.data(), in.x.data(), 0, kCols, h, 0.01).ok());
  EXPECT_FALSE(gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, h, -0.5).ok());
  EXPECT_FALSE(gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, h, std::nan("")).ok());
  auto small = gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, std::vector<float>(kCols), 0.01);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("Hessian is not 64 x 64"), std::string::npos) << small.status().message();
  std::vector<float> bad = in.x;
  bad[5] = std::numeric_limits<float>::infinity();
  auto r = gptq_target_map(in.xq.data(), bad.data(), kN, kCols, h, 0.01);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("reference"), std::string::npos) << r.status().message();
}

// What it is for: on drifted inputs, GPTQ run on the target (with the Hessian of X~) reproduces the
// unquantized layer's outputs X w^T better than GPTQ run on w, and both better than RTN.
TEST(GptqTarget, GptqOnTheTargetLowersTheOutputError) {
  const Inputs in = drifted_inputs();
  const auto w = testdata::heavy_tailed_weights(kRows, kCols, 31);
  const auto h = testdata::hessian_of(in.xq, kN, kCols);
  GridSpec spec;
  spec.type = GridType::kQ4_0;
  spec.group_size = 32;
  auto plain = grid_quantize_gptq(w.data(), kRows, kCols, h, spec);
  auto m = gptq_target_map(in.xq.data(), in.x.data(), kN, kCols, h, GridGptqOptions{}.damp_percent);
  ASSERT_TRUE(plain.ok() && m.ok());
  std::vector<float> t = w;
  apply_target_map(t.data(), kRows, kCols, *m);
  auto targeted = grid_quantize_gptq(t.data(), kRows, kCols, h, spec);
  auto rtn = grid_quantize_rtn(w.data(), kRows, kCols, spec);
  ASSERT_TRUE(targeted.ok() && rtn.ok());
  const double e_rtn = output_error(in, rtn->dequantize(), w);
  const double e_plain = output_error(in, plain->dequantize(), w);
  const double e_target = output_error(in, targeted->dequantize(), w);
  EXPECT_LT(e_plain, e_rtn);
  EXPECT_LT(e_target, 0.8 * e_plain) << "rtn " << e_rtn << " gptq " << e_plain << " gptq on target " << e_target;
}

}  // namespace
}  // namespace llmopt::quant
