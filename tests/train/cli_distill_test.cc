// Distillation end to end through the binary on stories260K as the target: `llmopt distill-data`
// writes the target's generations with its top-k distributions (checked against the target's own
// forward pass), `llmopt train --distill-from` learns from that file and from teacher-forced text,
// and bad input is one clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/thread_pool.h"
#include "model/loader.h"
#include "model/kv_store.h"
#include "test_util.h"
#include "train/distill_data.h"

namespace llmopt {
namespace {

constexpr const char* kStories = "models/stories260K/stories260K.gguf";

bool have_binary_with(const std::string& sub) {
  if (!std::filesystem::exists(test::llmopt_binary())) return false;
  return test::run_command(test::llmopt_binary() + " " + sub + " --help").exit_code == 0;
}

TEST(DistillCli, GeneratesDataThatMatchesTheTargetAndTrainsOnIt) {
  LLMOPT_REQUIRE_DATA(kStories);
  if (!have_binary_with("distill-data")) GTEST_SKIP() << "llmopt binary without distill-data";
  const std::string dir = test::temp_dir();
  const std::string target = test::data_path(kStories);
  test::write_file(dir + "/prompts.txt", "# comment\nOnce upon a time\nThe little dog\n\nLily and Tom\n");
  auto r = test::run_command(test::llmopt_binary() + " distill-data -m '" + target + "' --prompts '" + dir +
                             "/prompts.txt' -o '" + dir + "/d.dist' --text '" + dir + "/d.txt' -n 48 --samples 3" +
                             " --store-top-k 8 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto set = train::load_distill_set(dir + "/d.dist");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->k, 8);
  EXPECT_GT(set->n_soft(), 9u * 20u);  // 9 sequences, most of 48 tokens generated
  EXPECT_FALSE(test::read_file(dir + "/d.txt").empty());

  // The stored distributions are the target's: re-run the target over the first sequence and compare
  // every soft row (ids and probabilities) with its own softmax.
  LoadOptions lo;
  auto model = load_model(target, lo);
  ASSERT_TRUE(model.ok());
  size_t end = 1;
  while (end < set->size() && !(set->tokens[end] == (*model)->tokenizer().bos())) ++end;
  ASSERT_GT(end, 10u);
  ASSERT_LE(end, 256u) << "sequences are not separated by BOS";
  const ModelConfig& cfg = (*model)->config();
  KvStore kv(cfg.n_layer, cfg.kv_dim(), 16, 16);
  std::vector<int32_t> table(16);
  for (int i = 0; i < 16; ++i) table[i] = i;
  SeqInput in;
  in.tokens = std::span<const int32_t>(set->tokens.data(), end);
  in.block_table = table;
  in.logits = LogitsMode::kAll;
  ForwardOutput out;
  ThreadPool pool(2);
  (*model)->forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  int checked = 0;
  for (size_t i = 0; i + 1 < end; ++i) {
    if (!set->is_soft(i)) continue;
    const float* l = out.logits.data() + i * cfg.n_vocab;
    double mx = l[0], z = 0.0;
    for (int v = 1; v < cfg.n_vocab; ++v) mx = std::max(mx, static_cast<double>(l[v]));
    for (int v = 0; v < cfg.n_vocab; ++v) z += std::exp(l[v] - mx);
    int best = 0;
    for (int v = 1; v < cfg.n_vocab; ++v) best = l[v] > l[best] ? v : best;
    EXPECT_EQ(set->ids[i * 8], best) << "row " << i;
    for (int j = 0; j < 8; ++j) {
      const int32_t id = set->ids[i * 8 + j];
      EXPECT_NEAR(set->probs[i * 8 + j], std::exp(l[id] - mx) / z, 2e-4) << "row " << i;
    }
    ++checked;
  }
  EXPECT_GT(checked, 20);

  // Train on it: distilled and plain (alpha 0) runs report held-out agreement and the unigram baseline.
  const std::string train = test::llmopt_binary() + " train --arch llama --dim 32 --layers 1 --heads 2 --ctx 32" +
                            " --distill-from '" + target + "' --distill-data '" + dir + "/d.dist' --steps 20" +
                            " --batch 4 --heldout 0.25 --eval-every 10 -t 2 --log-csv '" + dir + "/log.csv'";
  r = test::run_command(train + " -o '" + dir + "/s.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("top-1 agreement with the target"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("unigram baseline"), std::string::npos) << r.out;
  const std::string csv = test::read_file(dir + "/log.csv");
  EXPECT_EQ(csv.rfind("step,loss,heldout_loss,heldout_top1,lr,tok_s\n", 0), 0u) << csv;
  auto student = load_model(dir + "/s.gguf", lo);
  ASSERT_TRUE(student.ok()) << student.status().message();
  EXPECT_EQ((*student)->tokenizer().spec().tokens, (*model)->tokenizer().spec().tokens);

  // Teacher forcing over a text file.
  std::string text;
  for (int i = 0; i < 30; ++i) text += "Once upon a time there was a little girl. She liked to play outside.\n";
  test::write_file(dir + "/t.txt", text);
  r = test::run_command(test::llmopt_binary() + " train --arch llama --dim 32 --layers 1 --heads 2 --ctx 32" +
                        " --distill-from '" + target + "' -f '" + dir + "/t.txt' --steps 5 --batch 2 -t 2" +
                        " --eval-every 5 --heldout 0.2 -o '" + dir + "/tf.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("teacher: scoring"), std::string::npos) << r.err;
}

TEST(DistillCli, ClearErrors) {
  LLMOPT_REQUIRE_DATA(kStories);
  if (!have_binary_with("distill-data")) GTEST_SKIP() << "llmopt binary without distill-data";
  const std::string dir = test::temp_dir();
  const std::string target = test::data_path(kStories);
  auto expect = [&](const std::string& args, const std::string& needle) {
    auto r = test::run_command(test::llmopt_binary() + " " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
  };
  expect("distill-data -m '" + target + "' --prompts '" + dir + "/none.txt' -o '" + dir + "/x.dist'",
         "cannot open the prompt file");
  test::write_file(dir + "/empty.txt", "# only a comment\n\n");
  expect("distill-data -m '" + target + "' --prompts '" + dir + "/empty.txt' -o '" + dir + "/x.dist'", "no prompts");
  test::write_file(dir + "/p.txt", "Once upon a time\n");
  expect("distill-data -m '" + target + "' --prompts '" + dir + "/p.txt' -o '" + dir + "/x.dist' -c 16 -n 32",
         "exceeds the context");
  // A .dist file from another vocabulary.
  train::DistillSet other;
  other.k = 2;
  other.n_vocab = 40000;
  other.append_hard({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  ASSERT_TRUE(train::save_distill_set(dir + "/other.dist", other).ok());
  const std::string base = "train --arch llama --dim 16 --layers 1 --heads 2 --ctx 4 --steps 1 -o '" + dir + "/o.gguf'";
  expect(base + " --distill-from '" + target + "' --distill-data '" + dir + "/other.dist'", "vocabulary");
  test::write_file(dir + "/bad.dist", "LLMODIST");
  expect(base + " --distill-from '" + target + "' --distill-data '" + dir + "/bad.dist'", "too short");
  expect(base + " --distill-from '" + target + "'", "exactly one");
  expect(base + " -f '" + dir + "/p.txt'", "--tokenizer-from");
}

}  // namespace
}  // namespace llmopt
