// Acceptance rules of speculative decoding.
#include "runtime/spec/verifier.h"

#include <algorithm>
#include <vector>

#include "core/check.h"

namespace llmopt {

Verdict verify_sampled(std::span<const int32_t> drafted, std::span<const TokenDistribution* const> p,
                       std::span<const TokenDistribution* const> q, SpecRng& rng) {
  const size_t k = drafted.size();
  LLMOPT_CHECK(p.size() == k + 1 && q.size() == k);
  Verdict v;
  for (size_t i = 0; i < k; ++i) {
    const int32_t x = drafted[i];
    const double px = p[i]->prob(x), qx = q[i]->prob(x);
    LLMOPT_CHECK_MSG(qx > 0.0, "a drafted token must have positive draft probability");
    if (px >= qx || rng.uniform() < px / qx) {
      ++v.n_accepted;
      continue;
    }
    // Rejected: draw from the residual max(0, p - q), renormalized.
    std::vector<float> residual(p[i]->probs().size());
    double sum = 0.0;
    for (size_t t = 0; t < residual.size(); ++t) {
      residual[t] = std::max(0.0f, p[i]->probs()[t] - q[i]->probs()[t]);
      sum += residual[t];
    }
    // p == q up to rounding can leave no mass: then p itself is the right distribution.
    v.next = sum > 0.0 ? rng.draw(residual, sum) : rng.draw(p[i]->probs(), 1.0);
    return v;
  }
  double sum = 0.0;
  for (float x : p[k]->probs()) sum += x;
  v.next = rng.draw(p[k]->probs(), sum);
  return v;
}

Verdict verify_greedy(std::span<const int32_t> drafted, std::span<const int32_t> target_argmax) {
  LLMOPT_CHECK(target_argmax.size() == drafted.size() + 1);
  Verdict v;
  while (static_cast<size_t>(v.n_accepted) < drafted.size() && drafted[static_cast<size_t>(v.n_accepted)] ==
                                                                     target_argmax[static_cast<size_t>(v.n_accepted)]) {
    ++v.n_accepted;
  }
  v.next = target_argmax[static_cast<size_t>(v.n_accepted)];
  return v;
}

}  // namespace llmopt
