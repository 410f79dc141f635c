// `llmopt demo` (what `make run` runs) on a real tiny model: every section is printed, speculative
// output equals plain greedy output, parts that cannot run are named as such.
#include <gtest/gtest.h>

#include "test_util.h"

namespace llmopt {
namespace {

// A Q8_0 model is regrouped at load (where the kernels have the layout); the demo names the file's type.
TEST(DemoCliTest, QuantizedModelIsNamedByItsFileType) {
  const char* kModel = "models/tinystories-656k/TinyStories-656K-Q8_0.gguf";
  LLMOPT_REQUIRE_DATA(kModel);
  const std::string text = test::source_dir() + "/data/demo/eval.txt";
  auto r = test::run_command(test::llmopt_binary() + " demo -t 2 -n 8 -m '" + test::data_path(kModel) +
                             "' --text '" + text + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| q8_0 (as loaded)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("The file is already q8_0:"), std::string::npos) << r.out;
  for (const char* row : {"| f32 ", "| f16 ", "| q4_0 "}) EXPECT_NE(r.out.find(row), std::string::npos) << row;
  EXPECT_EQ(r.out.find("r16"), std::string::npos) << r.out;
}

TEST(DemoCliTest, RealModelPrintsEverySection) {
  const char* kModel = "models/stories260K/stories260K.gguf";
  LLMOPT_REQUIRE_DATA(kModel);
  const std::string text = test::source_dir() + "/data/demo/eval.txt";
  auto r = test::run_command(test::llmopt_binary() + " demo -t 2 -n 16 -m '" + test::data_path(kModel) +
                             "' --text '" + text + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"KV-cache speed-up", "same tokens with and without: yes", "## Weight types",
                           "f32 (as loaded)", "| q8_0", "| q4_0", "## Speculative decoding",
                           "same tokens as plain greedy decoding: yes", "no draft model given",
                           "## Serving 8 requests at once", "batched throughput:", "no chat template in this model"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  // The shipped evaluation text gives a perplexity (a number, not "-") for the model as loaded.
  const size_t row = r.out.find("f32 (as loaded)");
  ASSERT_NE(row, std::string::npos);
  const std::string line = r.out.substr(row, r.out.find('\n', row) - row);
  EXPECT_EQ(line.find(" - "), std::string::npos) << line;

  // With a draft model (here the model itself: same vocabulary) the draft section runs, and its
  // greedy output must equal plain decoding.
  r = test::run_command(test::llmopt_binary() + " demo -t 2 -n 16 -m '" + test::data_path(kModel) + "' --draft '" +
                        test::data_path(kModel) + "' --text '" + text + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const size_t sec = r.out.find("## Speculative decoding with the distilled draft model");
  ASSERT_NE(sec, std::string::npos) << r.out;
  EXPECT_NE(r.out.find("draft model, k = 2", sec), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("same tokens as plain greedy decoding: yes", sec), std::string::npos) << r.out;
  // A draft with another vocabulary is refused.
  r = test::run_command(test::llmopt_binary() + " demo -t 2 -n 8 -m '" + test::data_path(kModel) +
                        "' --draft '" + test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf") + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("vocabulary"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llmopt
