// Sampler stages against their definitions, determinism with a seed, and the empirical distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "runtime/sampling/sampler.h"

namespace llmopt {
namespace {

std::vector<int32_t> kept_ids(SamplerStage& stage, const std::vector<float>& logits) {
  Candidates c;
  c.reset(logits.data(), static_cast<int32_t>(logits.size()));
  stage.apply(c);
  std::vector<int32_t> ids;
  for (auto& it : c.items) ids.push_back(it.id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(SamplerStages, TopKKeepsTheKLargest) {
  std::vector<float> logits = {0.1f, 3.0f, -1.0f, 2.0f, 2.5f};
  auto s = make_top_k(3);
  EXPECT_EQ(kept_ids(*s, logits), (std::vector<int32_t>{1, 3, 4}));
}

TEST(SamplerStages, TopPKeepsSmallestPrefixReachingP) {
  // probabilities: softmax of log(0.5, 0.3, 0.15, 0.05) = exactly those values.
  std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  EXPECT_EQ(kept_ids(*make_top_p(0.5f), logits), (std::vector<int32_t>{1}));
  EXPECT_EQ(kept_ids(*make_top_p(0.79f), logits), (std::vector<int32_t>{1, 3}));
  EXPECT_EQ(kept_ids(*make_top_p(0.9f), logits), (std::vector<int32_t>{0, 1, 3}));
}

TEST(SamplerStages, MinPKeepsTokensAboveFractionOfTop) {
  std::vector<float> logits = {std::log(0.15f), std::log(0.5f), std::log(0.05f), std::log(0.3f)};
  // min_p 0.2: keep p >= 0.1 -> 0.5, 0.3, 0.15
  EXPECT_EQ(kept_ids(*make_min_p(0.2f), logits), (std::vector<int32_t>{0, 1, 3}));
}

TEST(SamplerStages, RepetitionPenaltyFollowsCtrlRule) {
  auto s = make_repetition_penalty(2.0f, 64);
  s->accept(0);
  s->accept(1);
  std::vector<float> logits = {4.0f, -1.0f, 3.0f};
  Candidates c;
  c.reset(logits.data(), 3);
  s->apply(c);
  EXPECT_FLOAT_EQ(c.items[0].logit, 2.0f);
  EXPECT_FLOAT_EQ(c.items[1].logit, -2.0f);
  EXPECT_FLOAT_EQ(c.items[2].logit, 3.0f);
}

TEST(SamplerChainTest, GreedyPicksArgmaxAndFirstOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  auto chain = make_sampler_chain(p);
  std::vector<float> logits = {1.0f, 5.0f, 5.0f, -2.0f};
  EXPECT_EQ(chain->sample(logits.data(), 4), 1);
}

// first_argmax against the plain scan `if (x[i] > x[best]) best = i`: random lengths (not multiples of
// its vectors or of its 256-logit runs), ties planted at random places, NaN and infinities mixed in.
TEST(SamplerChainTest, FirstArgmaxMatchesTheScalarScan) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> val(-4.0f, 4.0f);
  for (int trial = 0; trial < 2000; ++trial) {
    // Short rows and rows of several 256-logit runs (plus a partial one).
    const int32_t n = 1 + static_cast<int32_t>(trial % 2 == 0 ? rng() % 70 : rng() % 1100);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = std::round(val(rng) * 2.0f) / 2.0f;  // coarse values: ties are common
    const int specials = static_cast<int>(rng() % 4);
    for (int s = 0; s < specials; ++s) {
      const float pick[] = {std::nanf(""), INFINITY, -INFINITY};
      x[rng() % static_cast<size_t>(n)] = pick[rng() % 3];
    }
    int32_t best = 0;
    for (int32_t i = 1; i < n; ++i) {
      if (x[static_cast<size_t>(i)] > x[static_cast<size_t>(best)]) best = i;
    }
    ASSERT_EQ(first_argmax(x.data(), n), best) << "trial " << trial << " n " << n;
  }
}

TEST(SamplerChainTest, SameSeedSameSequence) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 42;
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[static_cast<size_t>(i)] = std::sin(i * 0.7f);
  auto a = make_sampler_chain(p), b = make_sampler_chain(p);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 200; ++i) {
    sa.push_back(a->sample(logits.data(), 50));
    sb.push_back(b->sample(logits.data(), 50));
  }
  EXPECT_EQ(sa, sb);
  p.seed = 43;
  auto c = make_sampler_chain(p);
  std::vector<int32_t> sc;
  for (int i = 0; i < 200; ++i) sc.push_back(c->sample(logits.data(), 50));
  EXPECT_NE(sa, sc);
}

TEST(SamplerChainTest, EmpiricalDistributionMatchesSoftmaxAtTemperature) {
  // Chi-square goodness of fit of 40000 draws against softmax(logits / T).
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 0.5f, -1.0f};
  const float temp = 0.7f;
  SamplingParams p;
  p.temperature = temp;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = 7;
  auto chain = make_sampler_chain(p);
  const int n = 40000;
  std::vector<int> counts(5, 0);
  for (int i = 0; i < n; ++i) counts[static_cast<size_t>(chain->sample(logits.data(), 5))]++;
  double z = 0;
  std::vector<double> probs;
  for (float l : logits) z += std::exp(l / temp);
  for (float l : logits) probs.push_back(std::exp(l / temp) / z);
  double chi2 = 0;
  for (size_t i = 0; i < 5; ++i) {
    const double e = probs[i] * n;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  // 4 degrees of freedom: P(chi2 > 18.47) = 0.001.
  EXPECT_LT(chi2, 18.47);
}

TEST(SamplerParams, ImpossibleValuesRejected) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_FALSE(validate_sampling(p).ok());
  p = SamplingParams();
  p.min_p = 1.5f;
  EXPECT_FALSE(validate_sampling(p).ok());
  p = SamplingParams();
  p.repeat_penalty = 0.0f;
  EXPECT_FALSE(validate_sampling(p).ok());
  EXPECT_TRUE(validate_sampling(SamplingParams()).ok());
}

}  // namespace
}  // namespace llmopt
