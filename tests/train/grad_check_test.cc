// The manual backward pass against central finite differences of the loss, for a sample of elements
// of every parameter tensor of tiny LLaMA (GQA) and GPT-2 models.
//
// Both the analytic gradient and the loss are computed with Transformer<double>, the same template
// code as the float trainer. With step h = 1e-5 the central difference has truncation error
// ~ h² |L'''| ~ 1e-10 and rounding error ~ 1e-16 · |L| / h ~ 1e-11, so gradient and difference must agree
// to ~1e-9 absolute; the test allows 1e-7 absolute plus 1e-5 relative, four orders of margin, while
// a wrong term in any backward formula shows up at the size of the gradient itself (1e-4 .. 1e-1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "train/transformer.h"
#include "train_test_util.h"

namespace llmopt::train {
namespace {

using testing::perturbed_params;
using testing::random_tokens;

void check_gradients(const ModelConfig& cfg_in, int64_t B, int64_t T, const char* label) {
  ModelConfig cfg = cfg_in;
  ASSERT_TRUE(validate_train_config(cfg).ok());
  const ParamLayout layout = make_param_layout(cfg);
  const std::vector<float> pf = perturbed_params(layout, 3);
  std::vector<double> p(pf.begin(), pf.end());
  const std::vector<int32_t> tokens = random_tokens(static_cast<size_t>(B * (T + 1)), cfg.n_vocab, 11);
  ThreadPool pool(2);
  Transformer<double> model(layout);
  std::vector<double> grad(layout.total);
  const double loss = model.run(p.data(), tokens.data(), B, T, grad.data(), pool);
  ASSERT_TRUE(std::isfinite(loss));

  const double h = 1e-5;
  Rng pick(5);
  double max_rel = 0.0, max_abs = 0.0;
  int checked = 0;
  for (const ParamTensor& t : layout.tensors) {
    // 8 random elements plus the element with the largest gradient of the tensor.
    std::vector<int64_t> idx;
    for (int i = 0; i < 8; ++i)
      idx.push_back(static_cast<int64_t>(pick.below(static_cast<uint64_t>(t.numel))));
    const double* g = grad.data() + t.offset;
    idx.push_back(
        std::max_element(g, g + t.numel, [](double a, double b) { return std::fabs(a) < std::fabs(b); }) - g);
    double tensor_max = 0.0;
    for (int64_t i : idx) tensor_max = std::max(tensor_max, std::fabs(g[i]));
    EXPECT_GT(tensor_max, 1e-6) << label << " " << t.name << ": gradient vanishes, check is vacuous";
    for (int64_t i : idx) {
      double& x = p[t.offset + static_cast<size_t>(i)];
      const double saved = x;
      x = saved + h;
      const double lp = model.run(p.data(), tokens.data(), B, T, nullptr, pool);
      x = saved - h;
      const double lm = model.run(p.data(), tokens.data(), B, T, nullptr, pool);
      x = saved;
      const double fd = (lp - lm) / (2 * h);
      EXPECT_NEAR(g[i], fd, 1e-7 + 1e-5 * std::fabs(fd)) << label << " " << t.name << "[" << i << "]";
      max_abs = std::max(max_abs, std::fabs(g[i] - fd));
      if (std::fabs(fd) > 1e-4) max_rel = std::max(max_rel, std::fabs(g[i] - fd) / std::fabs(fd));
      ++checked;
    }
  }
  std::printf(
      "[%s] %d elements of %zu tensors: max |error| %.2e, max relative error %.2e where |grad| > 1e-4\n",
      label, checked, layout.tensors.size(), max_abs, max_rel);
}

TEST(TrainGradCheck, LlamaGqaAllTensors) { check_gradients(testing::tiny_llama(16, 50, 8), 2, 8, "llama"); }

TEST(TrainGradCheck, Gpt2AllTensors) { check_gradients(testing::tiny_gpt2(16, 50, 8), 2, 8, "gpt2"); }

// A separate output.weight (stories260K's layout): its gradient and the embedding's (now input only).
TEST(TrainGradCheck, LlamaUntiedHead) {
  ModelConfig c = testing::tiny_llama(16, 50, 8);
  c.tied_head = false;
  check_gradients(c, 2, 8, "llama-untied");
}

// A sequence shorter than the context (positions 0..T-1 of a longer table) and one sequence.
TEST(TrainGradCheck, LlamaShortSequence) {
  check_gradients(testing::tiny_llama(16, 40, 12), 1, 5, "llama-short");
}

}  // namespace
}  // namespace llmopt::train
