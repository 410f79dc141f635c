// The distribution a sampler actually draws from: raw logits through the same stages as plain
// decoding (top-k -> top-p -> min-p -> temperature), then softmax, as a dense vector over the vocab.
// Speculative sampling compares the target's and the draft's such distributions token by token.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/sampling/sampler.h"

namespace llmopt {

class TokenDistribution {
 public:
  // Greedy parameters (temperature <= 0) give a one-hot at the first maximum.
  void from_logits(const float* logits, int32_t n_vocab, const SamplingParams& params);
  // One-hot on `token` (the draft "distribution" of a deterministic drafter).
  void one_hot(int32_t token, int32_t n_vocab);
  float prob(int32_t token) const { return p_[static_cast<size_t>(token)]; }
  const std::vector<float>& probs() const { return p_; }
  std::vector<float>& mutable_probs() { return p_; }
  int32_t n_vocab() const { return static_cast<int32_t>(p_.size()); }

 private:
  std::vector<float> p_;
  Candidates scratch_;
};

// Uniform doubles in [0, 1) from the top 53 bits of a 64-bit Mersenne Twister (as the dist stage),
// so results do not depend on the standard library's distributions.
class SpecRng {
 public:
  explicit SpecRng(uint64_t seed) : rng_(seed) {}
  double uniform() { return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0); }
  // Draws an index from unnormalized non-negative weights (sum > 0).
  int32_t draw(const std::vector<float>& weights, double sum);

 private:
  std::mt19937_64 rng_;
};

}  // namespace llmopt
