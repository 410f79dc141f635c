// The training loop end to end: a tiny model overfits a repeated sequence, a resumed run is bit-exact,
// checkpoints reject the wrong model, the data helpers and initialization behave as documented.
#include "train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <numeric>

#include "test_util.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train_test_util.h"

namespace llmopt::train {
namespace {

// A random permutation of 64 distinct tokens repeated `reps` times: every token has one successor.
std::vector<int32_t> repeated_sequence(int32_t vocab, int reps) {
  std::vector<int32_t> seq(static_cast<size_t>(vocab));
  std::iota(seq.begin(), seq.end(), 0);
  Rng rng(99);
  for (size_t i = seq.size() - 1; i > 0; --i) std::swap(seq[i], seq[rng.below(i + 1)]);
  seq.resize(64);
  std::vector<int32_t> out;
  for (int r = 0; r < reps; ++r) out.insert(out.end(), seq.begin(), seq.end());
  return out;
}

TrainOptions overfit_options(const ModelConfig& cfg) {
  TrainOptions o;
  o.config = cfg;
  o.batch = 8;
  o.steps = 300;
  o.lr = 1e-2f;
  o.warmup = 20;
  o.seed = 7;
  return o;
}

void overfit(const ModelConfig& cfg, const char* label) {
  ThreadPool pool(2);
  auto tr = Trainer::create(overfit_options(cfg), repeated_sequence(cfg.n_vocab, 20), {}, pool);
  ASSERT_TRUE(tr.ok()) << tr.status().message();
  double first = 0.0, last = 0.0;
  for (int64_t s = 0; s < 300; ++s) {
    const StepResult r = (*tr)->step();
    ASSERT_TRUE(std::isfinite(r.loss));
    if (s == 0) first = r.loss;
    last = r.loss;
  }
  std::printf("[%s] overfit: loss %.4f at step 1, %.4f at step 300\n", label, first, last);
  EXPECT_GT(first, 3.5);  // ~ln(72) at initialization
  EXPECT_LT(last, 0.5);
}

TEST(TrainOverfit, LlamaLearnsRepeatedSequence) { overfit(testing::tiny_llama(32, 72, 16), "llama"); }
TEST(TrainOverfit, Gpt2LearnsRepeatedSequence) { overfit(testing::tiny_gpt2(32, 72, 16), "gpt2"); }

TrainOptions resume_options() {
  TrainOptions o;
  o.config = testing::tiny_llama(32, 60, 16);
  o.batch = 4;
  o.steps = 20;
  o.lr = 3e-3f;
  o.warmup = 5;
  o.seed = 42;
  return o;
}

TEST(TrainResume, TenPlusTenEqualsTwentyBitExact) {
  const std::vector<int32_t> data = testing::random_tokens(3000, 60, 8);
  const std::string ckpt = test::temp_dir() + "/run.ckpt";

  ThreadPool pool1(1);
  auto full = Trainer::create(resume_options(), data, {}, pool1);
  ASSERT_TRUE(full.ok());
  std::vector<double> losses_full;
  for (int i = 0; i < 20; ++i) losses_full.push_back((*full)->step().loss);

  ThreadPool pool2(2);
  auto first = Trainer::create(resume_options(), data, {}, pool2);
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 10; ++i) EXPECT_EQ((*first)->step().loss, losses_full[i]) << "step " << i + 1;
  ASSERT_TRUE((*first)->save(ckpt).ok());

  // A fresh trainer (other seed-derived state discarded, another thread count) resumes.
  ThreadPool pool3(3);
  auto second = Trainer::create(resume_options(), data, {}, pool3);
  ASSERT_TRUE(second.ok());
  const Status st = (*second)->resume(ckpt);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ((*second)->step_index(), 10);
  for (int i = 10; i < 20; ++i) EXPECT_EQ((*second)->step().loss, losses_full[i]) << "step " << i + 1;

  const std::vector<float>& a = (*full)->params();
  const std::vector<float>& b = (*second)->params();
  ASSERT_EQ(a.size(), b.size());
  size_t diffs = 0;
  for (size_t i = 0; i < a.size(); ++i) diffs += a[i] != b[i];
  EXPECT_EQ(diffs, 0u);
  EXPECT_LT(losses_full[19], losses_full[0]);
}

TEST(TrainCheckpoint, RejectsOtherShapeAndBadFiles) {
  const std::string dir = test::temp_dir();
  const std::vector<int32_t> data = testing::random_tokens(500, 60, 8);
  ThreadPool pool(1);
  auto tr = Trainer::create(resume_options(), data, {}, pool);
  ASSERT_TRUE(tr.ok());
  ASSERT_TRUE((*tr)->save(dir + "/a.ckpt").ok());

  TrainOptions other = resume_options();
  other.config.n_ff += 8;
  auto tr2 = Trainer::create(other, data, {}, pool);
  ASSERT_TRUE(tr2.ok());
  Status st = (*tr2)->resume(dir + "/a.ckpt");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("ffn"), std::string::npos) << st.message();

  TrainOptions other_batch = resume_options();
  other_batch.batch += 1;
  auto tr3 = Trainer::create(other_batch, data, {}, pool);
  ASSERT_TRUE(tr3.ok());
  st = (*tr3)->resume(dir + "/a.ckpt");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("batch"), std::string::npos) << st.message();

  const std::string bytes = test::read_file(dir + "/a.ckpt");
  test::write_file(dir + "/short.ckpt", bytes.substr(0, bytes.size() - 7));
  st = (*tr)->resume(dir + "/short.ckpt");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st.message();
  test::write_file(dir + "/junk.ckpt", "not a checkpoint at all");
  EXPECT_FALSE((*tr)->resume(dir + "/junk.ckpt").ok());
  EXPECT_FALSE((*tr)->resume(dir + "/missing.ckpt").ok());
}

TEST(TrainData, SplitWindowsAndEval) {
  std::vector<int32_t> tokens(200);
  std::iota(tokens.begin(), tokens.end(), 0);
  const TokenSplit s = split_tokens(tokens, 0.05);
  EXPECT_EQ(s.train.size(), 190u);
  ASSERT_EQ(s.heldout.size(), 10u);
  EXPECT_EQ(s.heldout.front(), 190);

  Rng rng(1);
  std::vector<int32_t> win(3 * 9);
  sample_windows(s.train, 3, 8, rng, win.data());
  for (int b = 0; b < 3; ++b) {
    for (int i = 1; i < 9; ++i) EXPECT_EQ(win[b * 9 + i], win[b * 9] + i);  // consecutive tokens
    EXPECT_LE(win[b * 9 + 8], 189);
  }
  EXPECT_EQ(count_eval_windows(10, 8, 100), 1);
  EXPECT_EQ(count_eval_windows(8, 8, 100), 0);
  EXPECT_EQ(count_eval_windows(17, 8, 100), 2);
  EXPECT_EQ(count_eval_windows(1000, 8, 5), 5);
  eval_window(tokens, 8, 2, win.data());
  EXPECT_EQ(win[0], 16);
  EXPECT_EQ(win[8], 24);
}

TEST(TrainData, HeldoutLossIsDeterministicAndDrawsNothing) {
  const std::vector<int32_t> data = testing::random_tokens(2000, 60, 3);
  const TokenSplit s = split_tokens(data, 0.1);
  ThreadPool pool(2);
  auto a = Trainer::create(resume_options(), s.train, s.heldout, pool);
  auto b = Trainer::create(resume_options(), s.train, s.heldout, pool);
  ASSERT_TRUE(a.ok() && b.ok());
  const auto e0 = (*a)->heldout_loss();
  ASSERT_TRUE(e0.has_value());
  EXPECT_NEAR(*e0, std::log(60.0), 0.3);
  EXPECT_EQ(*e0, *(*a)->heldout_loss());
  // Evaluating does not change the data order: a and b still take identical steps.
  EXPECT_EQ((*a)->step().loss, (*b)->step().loss);
}

TEST(TrainSetup, ErrorsAreClear) {
  ThreadPool pool(1);
  TrainOptions o = resume_options();
  auto r = Trainer::create(o, testing::random_tokens(10, 60, 1), {}, pool);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokens"), std::string::npos) << r.status().message();
  o.config.n_head_kv = 3;
  r = Trainer::create(o, testing::random_tokens(100, 60, 1), {}, pool);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kv-heads"), std::string::npos) << r.status().message();
  o = resume_options();
  r = Trainer::create(o, {1, 2, 3, 99, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, {}, pool);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("vocabulary"), std::string::npos) << r.status().message();
}

TEST(TrainInit, SeededScaledAndNamed) {
  ModelConfig cfg = testing::tiny_llama(64, 100, 16);
  cfg.n_layer = 4;
  ASSERT_TRUE(validate_train_config(cfg).ok());
  const ParamLayout L = make_param_layout(cfg);
  const std::vector<float> a = init_params(L, 5), b = init_params(L, 5), c = init_params(L, 6);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  auto stddev = [&](const std::string& name) {
    for (const ParamTensor& t : L.tensors) {
      if (t.name != name) continue;
      double s = 0.0;
      for (int64_t i = 0; i < t.numel; ++i) s += static_cast<double>(a[t.offset + i]) * a[t.offset + i];
      return std::sqrt(s / static_cast<double>(t.numel));
    }
    return -1.0;
  };
  EXPECT_NEAR(stddev("token_embd.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("blk.0.ffn_up.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("blk.1.ffn_down.weight"), 0.02 / std::sqrt(8.0), 0.0005);
  EXPECT_NEAR(stddev("blk.3.attn_output.weight"), 0.02 / std::sqrt(8.0), 0.0006);
  EXPECT_DOUBLE_EQ(stddev("output_norm.weight"), 1.0);
  for (const ParamTensor& t : L.tensors) {
    EXPECT_EQ(t.decay, t.shape.size() == 2 && t.name != "token_embd.weight") << t.name;
  }
}

}  // namespace
}  // namespace llmopt::train
