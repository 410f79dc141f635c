// RTN, GPTQ and AWQ side by side on one LLM-like layer: each method's output error on the calibration
// inputs and on held-out inputs drawn from the same distribution.
#include <gtest/gtest.h>

#include <cstdio>

#include "quant/awq.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "quant/metrics.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

TEST(Compare, GptqAndAwqBeatRtnOnCalibrationAndHeldOutInputs) {
  const int64_t rows = 96, cols = 256, n = 512;
  const auto w = testdata::heavy_tailed_weights(rows, cols, 51);
  // One draw of 2n rows: the first n calibrate, the other n are held out (same channel structure).
  const auto all = testdata::llm_activations(2 * n, cols, 52);
  const std::vector<float> calib(all.begin(), all.begin() + n * cols);
  const std::vector<float> held(all.begin() + n * cols, all.end());
  HessianAccumulator acc(cols);
  ASSERT_TRUE(acc.add(calib.data(), n).ok());
  auto h = acc.hessian();
  ASSERT_TRUE(h.ok());
  struct Row {
    const char* name;
    AffineSpec::Granularity g;
    int gs;
  };
  for (const Row& r : {Row{"4-bit channel", AffineSpec::kChannel, 0}, Row{"4-bit g128", AffineSpec::kGroup, 128},
                       Row{"4-bit g32", AffineSpec::kGroup, 32}}) {
    AffineSpec spec;
    spec.bits = 4;
    spec.granularity = r.g;
    spec.group_size = r.gs;
    auto rtn = quantize_rtn(w.data(), rows, cols, spec);
    auto gptq = quantize_gptq(w.data(), rows, cols, *h, spec);
    GptqOptions act;
    act.act_order = true;
    auto gptq_act = quantize_gptq(w.data(), rows, cols, *h, spec, act);
    auto awq = quantize_awq(w.data(), rows, cols, calib.data(), n, spec);
    ASSERT_TRUE(rtn.ok() && gptq.ok() && gptq_act.ok() && awq.ok());
    const std::vector<float> w_rtn = dequantize(*rtn), w_gptq = dequantize(*gptq),
                             w_act = dequantize(*gptq_act), w_awq = awq_effective_weights(*awq);
    for (const auto* x : {&calib, &held}) {
      const double e_rtn = layer_output_error(x->data(), n, w.data(), w_rtn.data(), rows, cols);
      const double e_gptq = layer_output_error(x->data(), n, w.data(), w_gptq.data(), rows, cols);
      const double e_act = layer_output_error(x->data(), n, w.data(), w_act.data(), rows, cols);
      const double e_awq = layer_output_error(x->data(), n, w.data(), w_awq.data(), rows, cols);
      std::printf("[ info     ] %-13s %-11s ||XW^T - XW_hat^T||^2: RTN %.4e  GPTQ %.4e  GPTQ+act %.4e  AWQ %.4e\n",
                  r.name, x == &calib ? "calibration" : "held-out", e_rtn, e_gptq, e_act, e_awq);
      EXPECT_LT(e_gptq, e_rtn);
      EXPECT_LT(e_act, e_rtn);
      EXPECT_LT(e_awq, e_rtn);
    }
  }
}

}  // namespace
}  // namespace llmopt::quant
