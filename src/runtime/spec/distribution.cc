// TokenDistribution and SpecRng.
#include "runtime/spec/distribution.h"

#include <algorithm>

#include "core/check.h"

namespace llmopt {

void TokenDistribution::from_logits(const float* logits, int32_t n_vocab, const SamplingParams& params) {
  p_.assign(static_cast<size_t>(n_vocab), 0.0f);
  if (params.temperature <= 0.0f) {
    int32_t best = 0;
    for (int32_t i = 1; i < n_vocab; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    p_[static_cast<size_t>(best)] = 1.0f;
    return;
  }
  scratch_.reset(logits, n_vocab);
  make_top_k(params.top_k)->apply(scratch_);
  make_top_p(params.top_p)->apply(scratch_);
  make_min_p(params.min_p)->apply(scratch_);
  make_temperature(params.temperature)->apply(scratch_);
  scratch_.softmax();
  for (const auto& c : scratch_.items) p_[static_cast<size_t>(c.id)] = c.p;
}

void TokenDistribution::one_hot(int32_t token, int32_t n_vocab) {
  p_.assign(static_cast<size_t>(n_vocab), 0.0f);
  p_[static_cast<size_t>(token)] = 1.0f;
}

int32_t SpecRng::draw(const std::vector<float>& weights, double sum) {
  LLMOPT_CHECK(sum > 0.0);
  const double u = uniform() * sum;
  double cum = 0.0;
  int32_t last = -1;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0.0f) continue;
    cum += weights[i];
    last = static_cast<int32_t>(i);
    if (u < cum) return last;
  }
  return last;
}

}  // namespace llmopt
