// Distillation: the loss and its gradient against the definition and central finite differences,
// the .dist data file (round trip and every kind of bad file), and the trainer learning a teacher's
// rule that plain next-token training cannot see.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "test_util.h"
#include "train/distill_data.h"
#include "train/ops.h"
#include "train/trainer.h"
#include "train_test_util.h"

namespace llmopt::train {
namespace {

// A teacher row: k ids (distinct) with probabilities summing to at most 1, decreasing.
void teacher_row(Rng& rng, int64_t vocab, int32_t k, int32_t* ids, float* probs) {
  std::vector<int32_t> perm(static_cast<size_t>(vocab));
  std::iota(perm.begin(), perm.end(), 0);
  for (int32_t j = 0; j < k; ++j) std::swap(perm[j], perm[j + rng.below(static_cast<uint64_t>(vocab - j))]);
  double rest = 0.95;
  for (int32_t j = 0; j < k; ++j) {
    ids[j] = perm[j];
    probs[j] = static_cast<float>(rest * 0.5);
    rest *= 0.5;
  }
}

// The loss of one row written straight from the definition (independent of the code under test).
double reference_row_loss(const std::vector<double>& l, int32_t tgt, const int32_t* ids, const float* probs,
                          int32_t k, double alpha, double T) {
  auto lse = [&](double temp) {
    double mx = -1e300, s = 0.0;
    for (double v : l) mx = std::max(mx, v / temp);
    for (double v : l) s += std::exp(v / temp - mx);
    return mx + std::log(s);
  };
  const bool soft = ids[1] >= 0 && alpha > 0.0;
  const double a = soft ? alpha : 0.0;
  double loss = (1.0 - a) * (lse(1.0) - l[static_cast<size_t>(tgt)]);
  if (a > 0.0) {
    double z = 0.0;
    for (int32_t j = 0; j < k; ++j) z += ids[j] >= 0 ? std::pow(probs[j], 1.0 / T) : 0.0;
    double ce = 0.0;
    for (int32_t j = 0; j < k; ++j) {
      if (ids[j] < 0) continue;
      const double q = std::pow(probs[j], 1.0 / T) / z;
      ce += q * (lse(T) - l[static_cast<size_t>(ids[j])] / T);
    }
    loss += a * T * T * ce;
  }
  return loss;
}

struct LossCase {
  double alpha, temp;
};

class DistillLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(DistillLoss, ValueMatchesDefinitionAndGradientMatchesFiniteDifferences) {
  const auto [alpha, temp] = GetParam();
  const int64_t n = 5, V = 23;
  const int32_t k = 4;
  Rng rng(7);
  std::vector<double> logits(static_cast<size_t>(n * V));
  for (double& v : logits) v = 2.0 * rng.normal();
  std::vector<int32_t> targets(static_cast<size_t>(n)), ids(static_cast<size_t>(n * k));
  std::vector<float> probs(static_cast<size_t>(n * k));
  for (int64_t r = 0; r < n; ++r) {
    targets[static_cast<size_t>(r)] = static_cast<int32_t>(rng.below(V));
    teacher_row(rng, V, k, ids.data() + r * k, probs.data() + r * k);
  }
  // Row 2 is a hard label: a single entry.
  std::fill_n(ids.begin() + 2 * k + 1, k - 1, -1);
  std::fill_n(probs.begin() + 2 * k + 1, k - 1, 0.0f);
  ids[2 * k] = targets[2];
  probs[2 * k] = 1.0f;
  const SoftTargets soft{k, ids.data(), probs.data(), alpha, temp};
  ThreadPool pool(2);

  double ref = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    std::vector<double> row(logits.begin() + r * V, logits.begin() + (r + 1) * V);
    ref += reference_row_loss(row, targets[static_cast<size_t>(r)], ids.data() + r * k, probs.data() + r * k, k,
                              alpha, temp);
  }
  std::vector<double> g = logits;
  const double loss = distill_cross_entropy<double>(g.data(), targets.data(), soft, n, V, true, 1.0, pool);
  EXPECT_NEAR(loss, ref, 1e-10 * std::max(1.0, std::fabs(ref)));

  const double h = 1e-6;
  double max_grad = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    std::vector<double> p = logits, m = logits;
    p[i] += h;
    m[i] -= h;
    const double lp = distill_cross_entropy<double>(p.data(), targets.data(), soft, n, V, false, 1.0, pool);
    const double lm = distill_cross_entropy<double>(m.data(), targets.data(), soft, n, V, false, 1.0, pool);
    EXPECT_NEAR(g[i], (lp - lm) / (2 * h), 1e-7) << "logit " << i;
    max_grad = std::max(max_grad, std::fabs(g[i]));
  }
  EXPECT_GT(max_grad, 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Cases, DistillLoss,
                         ::testing::Values(LossCase{1.0, 1.0}, LossCase{0.5, 1.0}, LossCase{1.0, 2.0},
                                           LossCase{0.7, 0.5}, LossCase{0.0, 1.0}));

TEST(DistillLossMinimum, StudentEqualToTeacherHasZeroGradientAndEntropyLoss) {
  // Teacher mass on 3 of 6 tokens; a student with logits log q there (and -40 elsewhere) matches it:
  // the soft loss is q's entropy (KL = 0) and the gradient vanishes.
  const int64_t V = 6;
  const int32_t k = 3;
  const int32_t ids[k] = {4, 1, 2};
  const float probs[k] = {0.5f, 0.3f, 0.2f};
  std::vector<float> l(V, -40.0f);
  double entropy = 0.0;
  for (int j = 0; j < k; ++j) {
    l[ids[j]] = std::log(probs[j]);
    entropy -= probs[j] * std::log(static_cast<double>(probs[j]));
  }
  const int32_t tgt = 4;
  const SoftTargets soft{k, ids, probs, 1.0, 1.0};
  ThreadPool pool(1);
  const double loss = distill_cross_entropy<float>(l.data(), &tgt, soft, 1, V, true, 1.0f, pool);
  EXPECT_NEAR(loss, entropy, 1e-5);
  for (float g : l) EXPECT_NEAR(g, 0.0f, 1e-6f);
}

TEST(DistillData, TopKSoftmaxIsExactAndOrdered) {
  const std::vector<float> logits = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, 0.0f};
  int32_t ids[3];
  float probs[3];
  top_k_softmax(logits.data(), 6, 3, ids, probs);
  double z = 0.0;
  for (float v : logits) z += std::exp(static_cast<double>(v));
  EXPECT_EQ(ids[0], 1);  // tie broken by the lower id
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 4);
  EXPECT_NEAR(probs[0], std::exp(3.0) / z, 1e-7);
  EXPECT_NEAR(probs[2], std::exp(2.0) / z, 1e-7);
}

DistillSet small_set() {
  DistillSet s;
  s.k = 3;
  s.n_vocab = 10;
  s.append_hard({1, 2, 3});
  const std::vector<float> logits = {0, 0, 0, 0, 5, 4, 0, 0, 0, 0};
  s.set_last_row(logits.data());
  s.push_token(4);
  s.set_last_row(logits.data());
  s.push_token(5);
  return s;
}

TEST(DistillData, RowsFollowTheStream) {
  const DistillSet s = small_set();
  ASSERT_EQ(s.size(), 5u);
  EXPECT_FALSE(s.is_soft(0));
  EXPECT_EQ(s.ids[0 * 3], 2);  // row 0 predicts token 1's successor 2
  EXPECT_EQ(s.ids[1 * 3], 3);
  EXPECT_TRUE(s.is_soft(2));
  EXPECT_EQ(s.ids[2 * 3], 4);
  EXPECT_EQ(s.ids[2 * 3 + 1], 5);
  EXPECT_TRUE(s.row_open(4));
  EXPECT_EQ(s.n_soft(), 2u);

  DistillSet all = s;
  all.append_set(small_set());
  ASSERT_EQ(all.size(), 10u);
  EXPECT_FALSE(all.is_soft(4));  // the boundary row points at the next sequence's first token
  EXPECT_EQ(all.ids[4 * 3], 1);
  EXPECT_EQ(all.n_soft(), 4u);

  auto [train, held] = split_distill_set(all, 0.3);
  EXPECT_EQ(train.size(), 7u);
  EXPECT_EQ(held.size(), 3u);
  EXPECT_EQ(held.tokens[0], all.tokens[7]);
  EXPECT_EQ(held.ids[0], all.ids[7 * 3]);
}

TEST(DistillData, SaveLoadRoundTripAndBadFiles) {
  const std::string dir = test::temp_dir();
  const DistillSet s = small_set();
  ASSERT_TRUE(save_distill_set(dir + "/a.dist", s).ok());
  auto r = load_distill_set(dir + "/a.dist");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tokens, s.tokens);
  EXPECT_EQ(r->ids, s.ids);
  EXPECT_EQ(r->probs, s.probs);
  EXPECT_EQ(r->k, 3);
  EXPECT_EQ(r->n_vocab, 10);

  const std::string bytes = test::read_file(dir + "/a.dist");
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    test::write_file(dir + "/bad.dist", content);
    auto b = load_distill_set(dir + "/bad.dist");
    ASSERT_FALSE(b.ok()) << needle;
    EXPECT_NE(b.status().message().find(needle), std::string::npos) << b.status().message();
  };
  expect_error(bytes.substr(0, 20), "too short");
  expect_error(bytes.substr(0, bytes.size() - 4), "bytes");
  std::string magic = bytes;
  magic[0] = 'X';
  expect_error(magic, "bad magic");
  std::string lying = bytes;
  lying[24] = 100;  // n_tokens
  expect_error(lying, "header says");
  std::string bad_id = bytes;
  const size_t ids_at = 32 + 5 * 4;
  bad_id[ids_at + 0] = 50;  // row 0's first id = 50 >= vocab 10
  expect_error(bad_id, "row 0");
  std::string bad_tok = bytes;
  bad_tok[32] = 11;  // token 0 = 11
  expect_error(bad_tok, "outside the vocabulary");
  EXPECT_FALSE(load_distill_set(dir + "/missing.dist").ok());
}

// A teacher whose next token is a fixed function of the current one, over a token stream that is
// random: the actual next tokens carry no signal, the teacher's distributions carry all of it. A
// distilled student learns the rule (top-1 agreement far above chance); the same run with
// alpha = 0 (plain next-token training on the same tokens) stays near chance.
DistillSet rule_teacher_data(int32_t V, size_t n, uint64_t seed) {
  Rng rng(seed);
  DistillSet s;
  s.k = 4;
  s.n_vocab = V;
  for (size_t i = 0; i < n; ++i) {
    s.push_token(static_cast<int32_t>(rng.below(static_cast<uint64_t>(V))));
    const int32_t t = s.tokens.back();
    int32_t* ids = s.ids.data() + (s.size() - 1) * 4;
    float* probs = s.probs.data() + (s.size() - 1) * 4;
    const int32_t next[4] = {(t * 7 + 3) % V, (t + 1) % V, (t + 2) % V, (t + 5) % V};
    const float p[4] = {0.7f, 0.1f, 0.1f, 0.05f};
    for (int j = 0; j < 4; ++j) {
      ids[j] = next[j];
      probs[j] = p[j];
    }
  }
  return s;
}

double agreement_after_training(double alpha) {
  TrainOptions o;
  o.config = testing::tiny_llama(32, 40, 16);
  o.batch = 8;
  o.steps = 150;
  o.lr = 1e-2f;
  o.warmup = 10;
  o.seed = 5;
  o.eval_max_windows = 64;
  o.distill_alpha = alpha;
  ThreadPool pool(2);
  auto [train, held] = split_distill_set(rule_teacher_data(40, 6000, 3), 0.2);
  auto tr = Trainer::create_distill(o, std::move(train), std::move(held), pool);
  EXPECT_TRUE(tr.ok()) << tr.status().message();
  if (!tr.ok()) return -1.0;
  for (int i = 0; i < o.steps; ++i) (*tr)->step();
  auto ev = (*tr)->heldout_eval();
  EXPECT_TRUE(ev.has_value());
  EXPECT_GT(ev->n_teacher, 500);
  const HeldoutEval uni = (*tr)->unigram_baseline();
  EXPECT_EQ(uni.n_teacher, ev->n_teacher);
  EXPECT_LT(uni.top1_agreement(), 0.1);
  return ev->top1_agreement();
}

TEST(DistillTrainer, LearnsTheTeachersRuleThatPlainTrainingCannotSee) {
  const double distilled = agreement_after_training(1.0);
  const double plain = agreement_after_training(0.0);
  EXPECT_GT(distilled, 0.9);
  EXPECT_LT(plain, 0.15);
}

TEST(DistillTrainer, AlphaZeroIsPlainTrainingBitForBit) {
  TrainOptions o;
  o.config = testing::tiny_llama(16, 40, 8);
  o.batch = 4;
  o.steps = 5;
  o.seed = 9;
  o.distill_alpha = 0.0;
  ThreadPool pool(2);
  DistillSet data = rule_teacher_data(40, 500, 4);
  auto plain = Trainer::create(o, data.tokens, {}, pool);
  auto dist = Trainer::create_distill(o, data, DistillSet{}, pool);
  ASSERT_TRUE(plain.ok() && dist.ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*plain)->step().loss, (*dist)->step().loss) << "step " << i;
  EXPECT_EQ((*plain)->params(), (*dist)->params());
}

TEST(DistillTrainer, RejectsMismatchedData) {
  TrainOptions o;
  o.config = testing::tiny_llama(16, 40, 8);
  ThreadPool pool(1);
  DistillSet other = rule_teacher_data(30, 200, 1);
  auto r = Trainer::create_distill(o, other, DistillSet{}, pool);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocabulary"), std::string::npos) << r.status().message();
  o.distill_temp = 0.0;
  auto t = Trainer::create_distill(o, rule_teacher_data(40, 200, 1), DistillSet{}, pool);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("temperature"), std::string::npos);
}

}  // namespace
}  // namespace llmopt::train
