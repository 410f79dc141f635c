// `llmopt train` end to end through the binary: a short run with evaluation and checkpoints writes a
// GGUF that the loader accepts with the source model's tokenizer; flag errors are one clear line.
// (test_train does not depend on the binary's target: the tests skip when the binary is missing or
// predates the train subcommand.)
#include <gtest/gtest.h>

#include <filesystem>

#include "model/loader.h"
#include "test_util.h"

namespace llmopt {
namespace {

constexpr const char* kTrainCliStories = "models/stories260K/stories260K.gguf";

bool have_train_binary() {
  if (!std::filesystem::exists(test::llmopt_binary())) return false;
  return test::run_command(test::llmopt_binary() + " train --help").exit_code == 0;
}

std::string small_text(const std::string& dir) {
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "Once upon a time there was a little cat. The cat liked to play in the sun with a red ball.\n";
    text += "One day the ball rolled away and the cat ran after it. She was happy when she found it.\n";
  }
  const std::string path = dir + "/text.txt";
  test::write_file(path, text);
  return path;
}

TEST(TrainCli, TrainsEvaluatesCheckpointsAndWritesLoadableGguf) {
  LLMOPT_REQUIRE_DATA(kTrainCliStories);
  if (!have_train_binary()) GTEST_SKIP() << "llmopt binary without the train subcommand";
  const std::string dir = test::temp_dir();
  const std::string text = small_text(dir);
  const std::string base = test::llmopt_binary() +
                           " train --arch llama --dim 32 --layers 2 --heads 4 --kv-heads 2" +
                           " --ctx 32 --tokenizer-from '" + test::data_path(kTrainCliStories) + "' -f '" + text +
                           "' --steps 30 --batch 4 --lr 3e-3 --warmup 5 --seed 3 -t 2 --eval-every 10" +
                           " --heldout 0.1 --log-every 10 --save-every 10 --checkpoint '" + dir + "/c.ckpt'";
  auto r = test::run_command(base + " -o '" + dir + "/a.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("step 30/30"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tok/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("held-out loss"), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir + "/c.ckpt"));

  LoadOptions lo;
  auto m = load_model(dir + "/a.gguf", lo);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ((*m)->config().arch, Arch::kLlama);
  EXPECT_EQ((*m)->config().n_head_kv, 2);
  ASSERT_TRUE((*m)->has_tokenizer());
  auto src = load_model(test::data_path(kTrainCliStories), lo);
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*m)->tokenizer().spec().tokens, (*src)->tokenizer().spec().tokens);
  EXPECT_EQ((*m)->tokenizer().encode("The cat ran.", true), (*src)->tokenizer().encode("The cat ran.", true));

  // Resuming the final checkpoint has nothing left to do and writes the same model (same file name,
  // since general.name is the output's stem).
  std::filesystem::create_directories(dir + "/again");
  r = test::run_command(base + " --resume '" + dir + "/c.ckpt' -o '" + dir + "/again/a.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resumed"), std::string::npos) << r.err;
  EXPECT_EQ(test::read_file(dir + "/a.gguf"), test::read_file(dir + "/again/a.gguf"));
}

TEST(TrainCli, ClearErrors) {
  LLMOPT_REQUIRE_DATA(kTrainCliStories);
  if (!have_train_binary()) GTEST_SKIP() << "llmopt binary without the train subcommand";
  const std::string dir = test::temp_dir();
  const std::string text = small_text(dir);
  const std::string tok = " --tokenizer-from '" + test::data_path(kTrainCliStories) + "'";
  const std::string common = test::llmopt_binary() +
                             " train --arch llama --dim 32 --layers 1 --heads 4 --ctx 16" +
                             " --steps 2 -o '" + dir + "/x.gguf'";
  auto r = test::run_command(common + tok + " -f '" + dir + "/missing.txt'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error: "), std::string::npos);
  EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;

  r = test::run_command(common + " --tokenizer-from '" + dir + "/nope.gguf' -f '" + text + "'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nope.gguf"), std::string::npos) << r.err;

  r = test::run_command(common + tok + " -f '" + text + "' --save-every 5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--checkpoint"), std::string::npos) << r.err;

  r = test::run_command(common + tok + " -f '" + text + "' --kv-heads 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("kv-heads"), std::string::npos) << r.err;

  r = test::run_command(common + tok + " -f '" + text + "' --arch mamba");
  EXPECT_NE(r.exit_code, 0);

  r = test::run_command(common + tok + " -f '" + text + "' --resume '" + dir + "/none.ckpt'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("none.ckpt"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
}

}  // namespace
}  // namespace llmopt
