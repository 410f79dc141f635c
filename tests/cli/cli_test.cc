// The llmopt binary as a user meets it: subcommands on the real tiny models, and one clear error
// line with exit code 1 for every kind of bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "formats/gguf.h"
#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::bin;
using test::expect_one_line_error;
using test::kStory260K;
using test::q;

using test::run_command;

const char* kStory260KBin = "models/stories260K/stories260K.bin";
const char* kTok512 = "tokenizers/tok512/tok512.bin";

TEST(CliTest, HelpOnEverySubcommand) {
  for (const char* sub : {"generate", "perplexity", "info", "convert", "synth", "tokenize", "demo"}) {
    auto r = run_command(bin() + " " + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST(CliTest, GenerateStories260KReproducesReferenceStory) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bin() + " generate -m " + q(test::data_path(kStory260K)) +
                       " -p 'Once upon a time' -n 60 --temp 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(", there was a little girl named Lily. She loved to play outside in the park. One day, she "
                        "saw a big, red ball.",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos);
}

TEST(CliTest, GenerateWithoutKvCacheGivesSameText) {
  LLMOPT_REQUIRE_DATA(kStory260KBin);
  LLMOPT_REQUIRE_DATA(kTok512);
  std::string base = bin() + " generate -m " + q(test::data_path(kStory260KBin)) + " --tokenizer " +
                     q(test::data_path(kTok512)) + " -p 'Once upon a time' -n 40 --temp 0.8 --seed 5";
  auto a = run_command(base);
  auto b = run_command(base + " --no-kv-cache");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(b.err.find("KV cache off"), std::string::npos);
}

// Q8_0 matrices regrouped at load (the default where the kernels have the layout) and kept in the
// file layout (--no-repack) give the same sampled text and perplexity; `info` shows the file's types.
TEST(CliTest, RepackedAndFileLayoutGiveTheSameOutputs) {
  const char* kQ8 = "models/tinystories-656k/TinyStories-656K-Q8_0.gguf";
  LLMOPT_REQUIRE_DATA(kQ8);
  const std::string m = q(test::data_path(kQ8));
  const std::string gen = bin() + " generate -m " + m + " -p 'Once upon a time' -n 48 --temp 0.8 --seed 3";
  auto a = run_command(gen);
  auto b = run_command(gen + " --no-repack");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  auto info = run_command(bin() + " info -m " + m);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("q8_0"), std::string::npos);
  EXPECT_EQ(info.out.find("r16"), std::string::npos) << info.out;
}

TEST(CliTest, TokenizeIdsIsJson) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bin() + " tokenize -m " + q(test::data_path(kStory260K)) + " -p 'Hello world' --ids");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.front(), '[');
  EXPECT_EQ(r.out.rfind("[1, ", 0), 0u) << r.out;  // BOS first
}

TEST(CliTest, TokenizeFileEqualsPrompt) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/t.txt", "Once upon a time\nthere was a cat.");
  const std::string m = bin() + " tokenize -m " + q(test::data_path(kStory260K)) + " --ids ";
  auto a = run_command(m + "-f " + q(dir + "/t.txt"));
  auto b = run_command(m + "-p \"$(printf 'Once upon a time\\nthere was a cat.')\"");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out.find(","), std::string::npos);
  auto none = run_command(m);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("--prompt or --file"), std::string::npos) << none.err;
  auto both = run_command(m + "-p hi -f " + q(dir + "/t.txt"));
  EXPECT_EQ(both.exit_code, 1);
  auto missing = run_command(m + "-f " + q(dir + "/nope.txt"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nope.txt"), std::string::npos) << missing.err;
}

TEST(CliTest, InfoShowsTensorTable) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bin() + " info -m " + q(test::data_path(kStory260K)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("llama"), std::string::npos);
  EXPECT_NE(r.out.find("blk.0.attn_q.weight"), std::string::npos);
  EXPECT_NE(r.out.find("48 tensors"), std::string::npos);
}

TEST(CliTest, PerplexityDocumentsProtocolPrintsPplLine) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA("text/tinystories-valid-first1000.txt");
  auto r = run_command(bin() + " perplexity -m " + q(test::data_path(kStory260K)) + " -f " +
                       q(test::data_path("text/tinystories-valid-first1000.txt")) +
                       " --doc-sep '\\n<|endoftext|>\\n' --max-docs 20 -c 512");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto last = r.out.substr(r.out.rfind("PPL = "));
  EXPECT_EQ(last.rfind("PPL = ", 0), 0u);
  EXPECT_NE(last.find("+/-"), std::string::npos);
}

// ---- bad input: one clear error line naming the file and the problem, exit code 1 ----

TEST(CliBadInput, MissingModelFile) {
  auto r = run_command(bin() + " info -m /nonexistent/m.gguf");
  expect_one_line_error(r, {"/nonexistent/m.gguf"});
}

TEST(CliBadInput, TruncatedGguf) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  std::string bytes = test::read_file(test::data_path(kStory260K));
  std::string dir = test::temp_dir();
  for (size_t cut : {size_t{3}, size_t{20}, size_t{2000}, bytes.size() / 2, bytes.size() - 1}) {
    std::string path = dir + "/cut" + std::to_string(cut) + ".gguf";
    test::write_file(path, bytes.substr(0, cut));
    expect_one_line_error(run_command(bin() + " info -m " + q(path)), {path});
  }
}

TEST(CliBadInput, WrongMagic) {
  std::string dir = test::temp_dir();
  std::string path = dir + "/junk.gguf";
  test::write_file(path, std::string(4096, 'x'));
  expect_one_line_error(run_command(bin() + " generate -m " + q(path) + " -p hi"), {path});
}

TEST(CliBadInput, UnknownArchitecture) {
  std::string dir = test::temp_dir();
  std::string path = dir + "/arch.gguf";
  GgufWriter w;
  w.metadata().set("general.architecture", MetaValue::from_string("mamba9"));
  ASSERT_TRUE(w.write(path).ok());
  expect_one_line_error(run_command(bin() + " info -m " + q(path)), {path, "mamba9"});
}

TEST(CliBadInput, MissingTokenizerForLlama2c) {
  LLMOPT_REQUIRE_DATA(kStory260KBin);
  std::string dir = test::temp_dir();
  std::string path = dir + "/model.bin";
  test::write_file(path, test::read_file(test::data_path(kStory260KBin)));
  expect_one_line_error(run_command(bin() + " generate -m " + q(path) + " -p hi"), {path, "tokenizer"});
}

TEST(CliBadInput, PromptLongerThanContext) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  std::string prompt;
  for (int i = 0; i < 300; ++i) prompt += "the cat sat. ";
  auto r = run_command(bin() + " generate -m " + q(test::data_path(kStory260K)) + " -c 64 -p " + q(prompt));
  expect_one_line_error(r, {"stories260K.gguf", "longer than the context"});
}

TEST(CliBadInput, ImpossibleParameters) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bin() + " generate -m " + q(test::data_path(kStory260K)) + " -p hi --top-p 0");
  expect_one_line_error(r, {"top-p"});
  // Command lines the option parser rejects: the same one error line and exit code 1.
  expect_one_line_error(run_command(bin() + " generate -m x --no-such-flag"), {"--no-such-flag", "--help"});
  expect_one_line_error(run_command(bin() + " convert in -o out.gguf --outtype q9"), {"--outtype", "q9"});
  expect_one_line_error(run_command(bin()), {"subcommand"});
}

}  // namespace
}  // namespace llmopt

namespace llmopt {
namespace {

// The reference value in the data README: stories260K, 1000 TinyStories validation stories, each from
// BOS, truncated to 512 tokens: 1.513340 nats/token (float64 NumPy, sentencepiece tokenization).
TEST(CliPerplexity, Stories260KDocumentNllMatchesReference) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA("text/tinystories-valid-first1000.txt");
  auto r = run_command(bin() + " perplexity -m " + q(test::data_path(kStory260K)) + " -f " +
                       q(test::data_path("text/tinystories-valid-first1000.txt")) +
                       " --doc-sep '\\n<|endoftext|>\\n' -c 512 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto at = r.out.find("mean NLL ");
  ASSERT_NE(at, std::string::npos) << r.out;
  const double nll = std::stod(r.out.substr(at + 9));
  EXPECT_NEAR(nll, 1.513340, 0.001) << r.out;
  EXPECT_NE(r.out.find("1000 documents"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace llmopt
