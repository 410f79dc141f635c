// SmolLM2-135M-Instruct's tokenizer, loaded from the GGUF that `make model` fetches, against ids from
// HF tokenizers (tests/golden/tokenizer/smollm2.json, from tools/gen_smollm2_goldens.py): the
// "smollm" pre-tokenizer (digits one by one), bytes missing from the vocabulary, chat markup as
// single special tokens. Lives here because reading GGUF needs the model layer. Skips without the
// model file (it is not shared test data: `make model` puts it in the source tree's .cache).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "model/loader.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {
namespace {

std::string smollm2_path() { return test::source_dir() + "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"; }

#define REQUIRE_SMOLLM2()                                                                        \
  do {                                                                                           \
    if (!std::filesystem::exists(smollm2_path()))                                                \
      GTEST_SKIP() << "SmolLM2 model not found at " << smollm2_path() << " (run `make model`)"; \
  } while (0)

const Tokenizer& smollm2_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto spec = tokenizer_spec_from_file(smollm2_path());
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    auto t = Tokenizer::create(*spec);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return std::move(*t);
  }();
  return *tok;
}

TEST(TokenizerSmolLM2, SpecFromGguf) {
  REQUIRE_SMOLLM2();
  const Tokenizer& tok = smollm2_tokenizer();
  EXPECT_EQ(tok.spec().model, "gpt2");
  EXPECT_EQ(tok.spec().pre, "smollm");
  EXPECT_EQ(tok.n_vocab(), 49152);
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 1);
  EXPECT_EQ(tok.token_to_id("<|im_end|>"), 2);
  EXPECT_EQ(tok.eos(), 2);
  EXPECT_FALSE(tok.add_bos_default());
}

TEST(TokenizerSmolLM2, MatchesHfTokenizers) {
  REQUIRE_SMOLLM2();
  const Tokenizer& tok = smollm2_tokenizer();
  const auto golden = nlohmann::json::parse(
      test::read_file(test::source_dir() + "/tests/golden/tokenizer/smollm2.json"));
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const auto& c : golden["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"];
    const std::vector<int32_t> got = tok.encode_with_special(text, /*add_bos=*/false);
    EXPECT_EQ(got, want) << "text: " << text;
    EXPECT_EQ(tok.decode(got), std::string(c["decoded"])) << "text: " << text;
  }
}

TEST(TokenizerSmolLM2, DigitsAreSplit) {
  REQUIRE_SMOLLM2();
  const Tokenizer& tok = smollm2_tokenizer();
  const std::vector<int32_t> ids = tok.encode("12345", false);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_EQ(tok.decode(ids), "12345");
}

}  // namespace
}  // namespace llmopt
