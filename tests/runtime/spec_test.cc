// Speculative decoding: the acceptance rule is lossless (chi-square against the exact target
// distribution on a toy Markov model, and a deliberately broken verifier fails the same test), greedy
// speculative output equals plain greedy output for 100 prompts with every drafter, the draft
// vocabulary is checked, and adaptive k turns speculation off when it cannot win.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "model/loader.h"
#include "runtime/spec/adaptive_k.h"
#include "runtime/spec/drafter.h"
#include "runtime/spec/spec_decode.h"
#include "runtime/spec/verifier.h"
#include "test_util.h"

namespace llmopt {
namespace {

// ---- the acceptance rule on a toy model ---------------------------------------------------------

// p-value of a chi-square statistic with df degrees of freedom (Wilson-Hilferty normal approximation,
// accurate to a few percent of the p-value in the range that matters here).
double chi2_pvalue(double x, int df) {
  const double k = df;
  const double z = (std::cbrt(x / k) - (1.0 - 2.0 / (9.0 * k))) / std::sqrt(2.0 / (9.0 * k));
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

// Chi-square of observed counts against expected probabilities; cells with expected count < 5 are
// pooled. Returns the p-value.
double chi2_test(const std::map<int, int64_t>& observed, const std::map<int, double>& expected, int64_t n) {
  double stat = 0.0, pool_e = 0.0, pool_o = 0.0;
  int cells = 0;
  for (const auto& [cell, prob] : expected) {
    const double e = prob * static_cast<double>(n);
    const double o = observed.count(cell) ? static_cast<double>(observed.at(cell)) : 0.0;
    if (e < 5.0) {
      pool_e += e;
      pool_o += o;
      continue;
    }
    stat += (o - e) * (o - e) / e;
    ++cells;
  }
  for (const auto& [cell, o] : observed) {
    if (!expected.count(cell)) pool_o += static_cast<double>(o);  // impossible outcomes seen
  }
  if (pool_e > 0.0 || pool_o > 0.0) {
    stat += (pool_o - pool_e) * (pool_o - pool_e) / std::max(pool_e, 1e-9);
    ++cells;
  }
  return chi2_pvalue(stat, std::max(cells - 1, 1));
}

// A first-order Markov "model" over V tokens: logits of the next token given the previous one.
struct Toy {
  static constexpr int V = 6;
  float target[V][V];
  float draft[V][V];
  explicit Toy(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.0f, 1.5f);
    for (auto& row : target) for (auto& x : row) x = n(rng);
    for (auto& row : draft) for (auto& x : row) x = n(rng);
  }
};

using VerifyFn = Verdict (*)(std::span<const int32_t>, std::span<const TokenDistribution* const>,
                             std::span<const TokenDistribution* const>, SpecRng&);

Verdict broken_verify(std::span<const int32_t> drafted, std::span<const TokenDistribution* const> p,
                      std::span<const TokenDistribution* const>, SpecRng& rng) {
  Verdict v;  // accepts every drafted token: outputs the draft's distribution
  v.n_accepted = static_cast<int32_t>(drafted.size());
  double sum = 0;
  for (float x : p.back()->probs()) sum += x;
  v.next = rng.draw(p.back()->probs(), sum);
  return v;
}

// Generates the first two tokens after token 0 by speculative sampling with k = 3 and returns the
// p-values of the first token's and the pair's empirical distributions against the exact target.
std::pair<double, double> toy_pvalues(const SamplingParams& sp, VerifyFn verify, int64_t n_samples) {
  Toy toy(42);
  SpecRng rng(7), draft_rng(8);
  auto dist_of = [&](const float (*table)[Toy::V], int32_t prev) {
    TokenDistribution d;
    d.from_logits(table[prev], Toy::V, sp);
    return d;
  };
  std::map<int, int64_t> first, pair;
  for (int64_t s = 0; s < n_samples; ++s) {
    std::vector<int32_t> emitted;
    int32_t prev = 0;
    while (emitted.size() < 2) {
      std::vector<int32_t> drafted;
      std::vector<TokenDistribution> q, p;
      int32_t ctx = prev;
      for (int i = 0; i < 3; ++i) {
        q.push_back(dist_of(toy.draft, ctx));
        const int32_t t = draft_rng.draw(q.back().probs(), 1.0);
        p.push_back(dist_of(toy.target, ctx));
        drafted.push_back(t);
        ctx = t;
      }
      p.push_back(dist_of(toy.target, ctx));
      std::vector<const TokenDistribution*> pp, qq;
      for (auto& d : p) pp.push_back(&d);
      for (auto& d : q) qq.push_back(&d);
      const Verdict v = verify(drafted, pp, qq, rng);
      for (int32_t j = 0; j < v.n_accepted; ++j) emitted.push_back(drafted[static_cast<size_t>(j)]);
      emitted.push_back(v.next);
      prev = emitted.back();
    }
    ++first[emitted[0]];
    ++pair[emitted[0] * Toy::V + emitted[1]];
  }
  std::map<int, double> e1, e2;
  TokenDistribution p0 = dist_of(toy.target, 0);
  for (int a = 0; a < Toy::V; ++a) {
    if (p0.prob(a) <= 0.0f) continue;
    e1[a] = p0.prob(a);
    TokenDistribution pa = dist_of(toy.target, a);
    for (int b = 0; b < Toy::V; ++b) {
      if (pa.prob(b) > 0.0f) e2[a * Toy::V + b] = static_cast<double>(p0.prob(a)) * pa.prob(b);
    }
  }
  return {chi2_test(first, e1, n_samples), chi2_test(pair, e2, n_samples)};
}

TEST(SpecVerifierTest, SamplingIsLosslessAtTemperature1) {
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  const auto [p1, p2] = toy_pvalues(sp, verify_sampled, 100000);
  EXPECT_GT(p1, 0.001);
  EXPECT_GT(p2, 0.001);
}

TEST(SpecVerifierTest, SamplingIsLosslessWithTemperatureAndTopP) {
  SamplingParams sp;
  sp.temperature = 0.7f;
  sp.top_k = 0;
  sp.top_p = 0.9f;
  sp.min_p = 0.0f;
  const auto [p1, p2] = toy_pvalues(sp, verify_sampled, 100000);
  EXPECT_GT(p1, 0.001);
  EXPECT_GT(p2, 0.001);
}

TEST(SpecVerifierTest, BrokenVerifierIsCaught) {
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  const auto [p1, p2] = toy_pvalues(sp, broken_verify, 100000);
  EXPECT_LT(std::min(p1, p2), 1e-6);
}

TEST(SpecVerifierTest, GreedyKeepsTheMatchingPrefix) {
  const std::vector<int32_t> drafted = {5, 7, 9};
  EXPECT_EQ(verify_greedy(drafted, std::vector<int32_t>{5, 7, 9, 2}).n_accepted, 3);
  EXPECT_EQ(verify_greedy(drafted, std::vector<int32_t>{5, 7, 9, 2}).next, 2);
  const Verdict v = verify_greedy(drafted, std::vector<int32_t>{5, 8, 9, 2});
  EXPECT_EQ(v.n_accepted, 1);
  EXPECT_EQ(v.next, 8);
  EXPECT_EQ(verify_greedy({}, std::vector<int32_t>{4}).next, 4);
}

TEST(AdaptiveKTest, OffWhenDraftsAreRejectedOnWhenCheapAndAccepted) {
  AdaptiveK bad(8, true);
  EXPECT_EQ(bad.choose(), 0);  // a plain pass is measured first
  bad.observe(0, 0, 0.0, 0.010);
  for (int i = 0; i < 30; ++i) {
    const int32_t k = std::max(1, bad.choose());
    bad.observe(k, 0, 0.004 * k, 0.010 + 0.001 * k);  // nothing accepted, costly drafts
  }
  EXPECT_EQ(bad.choose(), 0);
  AdaptiveK good(8, true);
  good.choose();
  good.observe(0, 0, 0.0, 0.010);
  for (int i = 0; i < 30; ++i) {
    const int32_t k = std::max(1, good.choose());
    good.observe(k, k, 0.0001 * k, 0.010 + 0.0002 * k);  // all accepted, cheap
  }
  EXPECT_GE(good.choose(), 6);
  AdaptiveK fixed(5, false);
  EXPECT_EQ(fixed.choose(), 5);
}

// ---- on real models -----------------------------------------------------------------------------

std::unique_ptr<Model> load_spec_model(const std::string& rel) {
  auto m = load_model(test::data_path(rel));
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<std::vector<int32_t>> hundred_prompts(const Model& m) {
  std::mt19937 rng(11);
  const char* starts[] = {"Once upon a time", "The little dog", "Lily and Tom went", "One day, a bird", "Sam was sad"};
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < 100; ++i) {
    auto p = m.tokenizer().encode(starts[i % 5], true);
    const int extra = static_cast<int>(rng() % 6);
    for (int k = 0; k < extra; ++k) p.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(m.config().n_vocab)));
    out.push_back(std::move(p));
  }
  return out;
}

void expect_greedy_identical(const Model& target, Drafter& drafter, int32_t k, bool adaptive, SpecStats* total) {
  ThreadPool pool(2);
  GenerateOptions o;
  o.n_predict = 24;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  SpecOptions so;
  so.k = k;
  so.adaptive = adaptive;
  int i = 0;
  for (const auto& prompt : hundred_prompts(target)) {
    auto plain = generate(target, prompt, o, pool);
    SpecStats st;
    auto spec = generate_speculative(target, drafter, prompt, o, so, pool, &st);
    ASSERT_TRUE(plain.ok() && spec.ok()) << spec.status().message();
    ASSERT_EQ(spec->tokens, plain->tokens) << drafter.name() << ", prompt " << i;
    EXPECT_EQ(spec->text, plain->text);
    EXPECT_EQ(st.generated, 24);
    total->add(st);
    ++i;
  }
}

TEST(SpecDecodeTest, GreedyIdenticalToPlainWithEveryDrafter) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  auto target = load_spec_model("models/stories260K/stories260K.gguf");
  ASSERT_NE(target, nullptr);
  ThreadPool pool(2);
  auto self = make_self_draft(*target, DType::kQ4_0);
  ASSERT_TRUE(self.ok()) << self.status().message();
  ASSERT_TRUE(check_same_vocab(*target, **self).ok());
  ModelDrafter self_drafter(*self, target->config().n_ctx_train, 1, pool, "self q4_0");
  SpecStats s1;
  expect_greedy_identical(*target, self_drafter, 4, false, &s1);
  EXPECT_GT(s1.acceptance_rate(), 0.3);
  EXPECT_GT(s1.tokens_per_pass(), 1.5);

  NgramDrafter ngram(3, target->config().n_vocab);
  SpecStats s2;
  expect_greedy_identical(*target, ngram, 4, false, &s2);
  EXPECT_GT(s2.drafted, 0);

  SpecStats s3;
  ModelDrafter adaptive_drafter(*self, target->config().n_ctx_train, 1, pool, "self q4_0");
  expect_greedy_identical(*target, adaptive_drafter, 6, true, &s3);
  // Acceptance by position can only fall: a token is drafted at position j only after j accepted.
  for (size_t j = 1; j < s1.accepted_at.size(); ++j) EXPECT_LE(s1.accepted_at[j], s1.accepted_at[j - 1]);
}

TEST(SpecDecodeTest, SeparateDraftFileGreedyIdentical) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/model.safetensors");
  auto target = load_spec_model("models/tinystories-656k");
  std::shared_ptr<const Model> draft = load_spec_model("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  ASSERT_TRUE(target && draft);
  ASSERT_TRUE(check_same_vocab(*target, *draft).ok());
  ThreadPool pool(2);
  ModelDrafter d(draft, target->config().n_ctx_train, 1, pool);
  SpecStats st;
  expect_greedy_identical(*target, d, 4, false, &st);
  EXPECT_GT(st.acceptance_rate(), 0.8);  // Q8_0 of the same weights agrees almost always
}

TEST(SpecDecodeTest, RefusesOtherVocabulariesAndRepetitionPenalty) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  auto a = load_spec_model("models/stories260K/stories260K.gguf");
  auto b = load_spec_model("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  ASSERT_TRUE(a && b);
  Status st = check_same_vocab(*a, *b);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("must share the target's tokenizer"), std::string::npos) << st.message();
  ThreadPool pool(1);
  NgramDrafter ngram(2, a->config().n_vocab);
  GenerateOptions o;
  o.sampling.repeat_penalty = 1.1f;
  auto r = generate_speculative(*a, ngram, a->tokenizer().encode("Hi", true), o, SpecOptions{}, pool);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("repetition penalty"), std::string::npos);
}

// Sampling on a real small-vocabulary model: the first generated token follows the target's
// distribution (chi-square), with the self-draft proposing.
TEST(SpecDecodeTest, FirstTokenFollowsTargetDistributionOnRealModel) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  auto target = load_spec_model("models/stories260K/stories260K.gguf");
  ASSERT_NE(target, nullptr);
  ThreadPool pool(1);
  auto self = make_self_draft(*target, DType::kQ4_0);
  ASSERT_TRUE(self.ok());
  const auto prompt = target->tokenizer().encode("Once upon a time, there was a", true);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  // Exact target distribution of the first token.
  GenerateOptions o;
  o.n_predict = 4;  // room for a full k = 3 draft, so the first token goes through the acceptance rule
  o.sampling = sp;
  o.ignore_eos = true;
  KvStore kv(target->config().n_layer, target->config().kv_dim(), 8, 16);
  BlockPool bp(8);
  SeqBlocks seq(bp, 16);
  ASSERT_TRUE(seq.reserve(static_cast<int32_t>(prompt.size())));
  SeqInput in;
  in.tokens = prompt;
  in.block_table = seq.table();
  ForwardOutput out;
  target->forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  TokenDistribution exact;
  exact.from_logits(out.logits.data(), target->config().n_vocab, sp);
  std::map<int, double> expected;
  for (int t = 0; t < target->config().n_vocab; ++t) {
    if (exact.prob(t) > 0.0f) expected[t] = exact.prob(t);
  }
  ModelDrafter d(*self, 64, 3, pool);
  std::map<int, int64_t> seen;
  const int64_t n = 3000;
  SpecStats total;
  for (int64_t s = 0; s < n; ++s) {
    o.sampling.seed = static_cast<uint64_t>(s) + 1;
    SpecOptions so;
    so.k = 3;
    SpecStats st;
    auto r = generate_speculative(*target, d, prompt, o, so, pool, &st);
    ASSERT_TRUE(r.ok());
    ++seen[r->tokens[0]];
    total.add(st);
  }
  EXPECT_GT(chi2_test(seen, expected, n), 0.001);
  EXPECT_EQ(total.drafted_at.size(), 3u);
  EXPECT_GE(total.drafted_at[0], n);  // every sample starts with a drafted, verified round
}

}  // namespace
}  // namespace llmopt
