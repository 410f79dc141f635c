// `llmopt chat` piped on SmolLM2-135M-Instruct (fetched by `make model`; skipped without it).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "test_util.h"

namespace llmopt {
namespace {

std::string smollm2_path() { return test::source_dir() + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"; }

TEST(ChatCliTest, PipedQuestionGetsGreedyAnswer) {
  if (!std::filesystem::exists(smollm2_path())) {
    GTEST_SKIP() << "SmolLM2 model not found at " << smollm2_path() << " (run `make model`)";
  }
  const std::string cmd = "printf 'What is 2+2?\\n/reset\\nWhat is the capital of France?\\n' | " +
                          test::llmopt_binary() + " chat -m '" + smollm2_path() + "' -n 40 --temp 0 -t 2";
  auto r = test::run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Greedy reply to the first question, as llama.cpp's llama-simple gives it on the same prompt.
  EXPECT_EQ(r.out.rfind("The answer to this classic math problem is 4.\n", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("<|im_"), std::string::npos) << r.out;  // markup never leaks into replies
  EXPECT_NE(r.out.rfind("> ", 0), 0u) << r.out;  // no "> " prompt when stdin is not a terminal
  // Two replies, one per question (the /reset line produces none on stdout).
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_EQ(r.err, "(history cleared)\n");
}

TEST(ChatCliTest, HelpListsOptions) {
  auto r = test::run_command(test::llmopt_binary() + " chat --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--system"), std::string::npos);
}

}  // namespace
}  // namespace llmopt
