// generate() on a real tiny model: KV cache on/off, seeds, stop strings, streaming, limits.
#include <gtest/gtest.h>

#include "model/loader.h"
#include "runtime/generate.h"
#include "test_util.h"

namespace llmopt {
namespace {

std::unique_ptr<Model> load_stories() {
  auto m = load_model(test::data_path("models/stories260K/stories260K.gguf"));
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

class GenerateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::have_data("models/stories260K/stories260K.gguf")) GTEST_SKIP() << "stories260K.gguf not found";
    model_ = load_stories();
    ASSERT_NE(model_, nullptr);
    prompt_ = model_->tokenizer().encode("Once upon a time", true);
  }
  std::unique_ptr<Model> model_;
  std::vector<int32_t> prompt_;
  ThreadPool pool_{2};
};

TEST_F(GenerateTest, GreedyReproducesReferenceAndCacheDoesNotChangeIt) {
  GenerateOptions o;
  o.n_predict = 50;
  o.sampling.temperature = 0;
  auto a = generate(*model_, prompt_, o, pool_);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->text.rfind(", there was a little girl named Lily.", 0), 0u) << a->text;
  o.kv_cache = false;
  auto b = generate(*model_, prompt_, o, pool_);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->stop_reason, "length");
  EXPECT_EQ(a->tokens.size(), 50u);
}

TEST_F(GenerateTest, SameSeedSameOutputDifferentSeedDifferent) {
  GenerateOptions o;
  o.n_predict = 40;
  o.sampling.temperature = 1.0f;
  o.sampling.seed = 11;
  auto a = generate(*model_, prompt_, o, pool_);
  auto b = generate(*model_, prompt_, o, pool_);
  o.sampling.seed = 12;
  auto c = generate(*model_, prompt_, o, pool_);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_NE(a->tokens, c->tokens);
}

TEST_F(GenerateTest, StopStringEndsAndIsRemovedAndNeverStreamed) {
  GenerateOptions o;
  o.n_predict = 100;
  o.sampling.temperature = 0;
  o.stop = {"Lily"};
  std::string streamed;
  auto r = generate(*model_, prompt_, o, pool_, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "stop");
  EXPECT_EQ(r->text, ", there was a little girl named ");
  EXPECT_EQ(streamed, r->text);
}

TEST_F(GenerateTest, StreamedTextEqualsResultText) {
  GenerateOptions o;
  o.n_predict = 80;
  o.sampling.temperature = 0;
  std::string streamed;
  auto r = generate(*model_, prompt_, o, pool_, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(streamed, r->text);
  EXPECT_EQ(r->text, model_->tokenizer().decode(r->tokens).substr(0, r->text.size()));
}

TEST(GenerateEos, EosStopsUnlessIgnored) {
  // TinyStories-656K's greedy story from BOS ends with <|end_story|> (EOS, id 2) after 139 tokens.
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/model.safetensors");
  auto m = load_model(test::data_path("models/tinystories-656k"));
  ASSERT_TRUE(m.ok()) << m.status().message();
  const Model& model = **m;
  ThreadPool pool(2);
  std::vector<int32_t> bos = {model.tokenizer().bos()};
  GenerateOptions o;
  o.n_predict = 400;
  o.sampling.temperature = 0;
  auto r = generate(model, bos, o, pool);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->stop_reason, "eos");
  EXPECT_EQ(r->tokens.back(), model.tokenizer().eos());
  EXPECT_LT(r->tokens.size(), 400u);
  o.ignore_eos = true;
  o.n_ctx = 300;
  auto full = generate(model, bos, o, pool);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->stop_reason, "context");
  EXPECT_EQ(full->tokens.size() + 1, 300u);
}

TEST_F(GenerateTest, BadRequestsAreErrors) {
  GenerateOptions o;
  std::vector<int32_t> empty;
  EXPECT_FALSE(generate(*model_, empty, o, pool_).ok());
  std::vector<int32_t> too_long(3000, 5);  // the GGUF says context 2048
  auto r = generate(*model_, too_long, o, pool_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("longer than the context"), std::string::npos);
  std::vector<int32_t> bad_id = {1, 99999};
  EXPECT_FALSE(generate(*model_, bad_id, o, pool_).ok());
}

TEST(Utf8StreamerTest, HoldsBackIncompleteSequences) {
  Utf8Streamer s;
  EXPECT_EQ(s.push("a\xE2"), "a");
  EXPECT_EQ(s.push("\x96"), "");
  EXPECT_EQ(s.push("\x81"
                   "b"),
            "\xE2\x96\x81"
            "b");
  EXPECT_EQ(s.push("\xF0\x9F"), "");
  EXPECT_EQ(s.flush(), "\xF0\x9F");
}

}  // namespace
}  // namespace llmopt
