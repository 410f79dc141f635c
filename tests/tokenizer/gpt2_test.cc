// GPT-2 byte-level BPE against independent references: gpt-3-encoder's test vectors and llama.cpp's
// ggml-vocab-gpt-2 inputs/outputs (produced by HF tokenizers), from both vocab.json+merges.txt and
// tokenizer.json; plus the byte map, the pre-tokenizer pattern, and special-token parsing.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_util.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace llmopt {
namespace {

using tokenizer_internal::gpt2_byte_to_codepoint;
using tokenizer_internal::gpt2_pretokenize;

const Tokenizer& gpt2_from_vocab_merges() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto spec = tokenizer_spec_from_vocab_merges(test::data_path("tokenizers/gpt2/vocab.json"),
                                                 test::data_path("tokenizers/gpt2/merges.txt"));
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    auto t = Tokenizer::create(*spec);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return std::move(*t);
  }();
  return *tok;
}

const Tokenizer& gpt2_from_hf_json() {
  static std::unique_ptr<Tokenizer> tok = [] {
    auto spec = tokenizer_spec_from_hf_json(test::data_path("tokenizers/gpt2/tokenizer.json"));
    EXPECT_TRUE(spec.ok()) << spec.status().message();
    auto t = Tokenizer::create(*spec);
    EXPECT_TRUE(t.ok()) << t.status().message();
    return std::move(*t);
  }();
  return *tok;
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Case> gpt2_test_vectors() {
  const auto j = nlohmann::json::parse(test::read_file(test::data_path("tokenizers/gpt2/test-vectors.json")));
  std::vector<Case> cases;
  for (const auto& c : j)
    cases.push_back({c["text"].get<std::string>(), c["ids"].get<std::vector<int32_t>>()});
  return cases;
}

// llama.cpp's test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n", one output line
// of space-separated ids per input.
std::vector<Case> llama_cpp_vectors(const std::string& inp_path, const std::string& out_path) {
  const std::string raw = test::read_file(inp_path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  size_t pos = 0;
  while (true) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) break;
    cases.push_back({raw.substr(pos, next - pos), {}});
    pos = next + sep.size();
  }
  std::istringstream out(test::read_file(out_path));
  std::string line;
  for (Case& c : cases) {
    if (!std::getline(out, line)) break;
    std::istringstream ls(line);
    int32_t id;
    while (ls >> id) c.ids.push_back(id);
  }
  return cases;
}

TEST(BpeGpt2, ByteMapIsGpt2BytesToUnicode) {
  const auto& m = gpt2_byte_to_codepoint();
  EXPECT_EQ(m['!'], static_cast<uint32_t>('!'));
  EXPECT_EQ(m['~'], static_cast<uint32_t>('~'));
  EXPECT_EQ(m[0xA1], 0xA1u);
  EXPECT_EQ(m[0xFF], 0xFFu);
  EXPECT_EQ(m[0x00], 0x100u);
  EXPECT_EQ(m['\n'], 0x10Au);  // "Ċ"
  EXPECT_EQ(m[' '], 0x120u);   // "Ġ"
  EXPECT_EQ(m[0x7F], 0x121u);
  EXPECT_EQ(m[0xAD], 0x143u);  // the last non-printable byte
  std::set<uint32_t> distinct(m.begin(), m.end());
  EXPECT_EQ(distinct.size(), 256u);
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view w : gpt2_pretokenize(s)) out.emplace_back(w);
  return out;
}

TEST(BpeGpt2, PretokenizerFollowsThePattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split(""), V{});
  EXPECT_EQ(split("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(split("Hello   world"), (V{"Hello", "  ", " world"}));
  EXPECT_EQ(split("trailing  "), (V{"trailing", "  "}));
  EXPECT_EQ(split("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(split("x\n   y"), (V{"x", "\n  ", " y"}));
  EXPECT_EQ(split("don't we'll I'M"), (V{"don", "'t", " we", "'ll", " I", "'", "M"}));
  EXPECT_EQ(split("'quoted'"), (V{"'", "quoted", "'"}));
  EXPECT_EQ(split(" 123abc 4½"), (V{" 123", "abc", " 4½"}));
  EXPECT_EQ(split("a+b<=c"), (V{"a", "+", "b", "<=", "c"}));
  EXPECT_EQ(split(" !? x"), (V{" !?", " x"}));
  EXPECT_EQ(split("\xC2\xA0non"), (V{"\xC2\xA0", "non"}));  // NBSP is \s but not the optional ' '
  EXPECT_EQ(split("caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD"), (V{"caf\xC3\xA9", " \xE4\xBD\xA0\xE5\xA5\xBD"}));
  // Invalid UTF-8 bytes are "other" characters and stay intact.
  EXPECT_EQ(split("a\xFF\xFE b"), (V{"a", "\xFF\xFE", " b"}));
}

void expect_cases(const Tokenizer& tok, const std::vector<Case>& cases, const char* what) {
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    EXPECT_EQ(tok.encode(c.text, false), c.ids)
        << what << " #" << i << ": " << testing::PrintToString(c.text);
    EXPECT_EQ(tok.decode(c.ids), c.text) << what << " #" << i;
  }
}

TEST(BpeGpt2, TestVectorsFromVocabAndMerges) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/test-vectors.json");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  const auto cases = gpt2_test_vectors();
  ASSERT_EQ(cases.size(), 40u);
  expect_cases(gpt2_from_vocab_merges(), cases, "test-vectors");
}

TEST(BpeGpt2, TestVectorsFromTokenizerJson) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/test-vectors.json");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/tokenizer.json");
  const auto cases = gpt2_test_vectors();
  ASSERT_EQ(cases.size(), 40u);
  expect_cases(gpt2_from_hf_json(), cases, "test-vectors");
}

TEST(BpeGpt2, LlamaCppVocabTestVectors) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/ggml-vocab-gpt-2.gguf.inp");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/tokenizer.json");
  const auto cases = llama_cpp_vectors(test::data_path("tokenizers/gpt2/ggml-vocab-gpt-2.gguf.inp"),
                                       test::data_path("tokenizers/gpt2/ggml-vocab-gpt-2.gguf.out"));
  ASSERT_EQ(cases.size(), 46u);
  expect_cases(gpt2_from_vocab_merges(), cases, "ggml-vocab-gpt-2");
  expect_cases(gpt2_from_hf_json(), cases, "ggml-vocab-gpt-2");
}

TEST(BpeGpt2, SpecsFromBothSourcesAgree) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/tokenizer.json");
  const TokenizerSpec& a = gpt2_from_vocab_merges().spec();
  const TokenizerSpec& b = gpt2_from_hf_json().spec();
  EXPECT_EQ(a.model, "gpt2");
  EXPECT_EQ(b.model, "gpt2");
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.tokens.size(), 50257u);
  EXPECT_EQ(a.merges.size(), 50000u);
  EXPECT_EQ(a.bos_id, 50256);
  EXPECT_EQ(a.eos_id, 50256);
  EXPECT_EQ(b.eos_id, 50256);
  EXPECT_EQ(gpt2_from_vocab_merges().token_type(50256), TokenType::kControl);
  EXPECT_EQ(b.token_types[50256], static_cast<int32_t>(TokenType::kControl));
}

TEST(BpeGpt2, RoundTripsArbitraryBytes) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  const Tokenizer& tok = gpt2_from_vocab_merges();
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  for (const std::string& s : {all, std::string("\xFF\xFE invalid \xC3 utf8 \xE2\x82"),
                               std::string(1000, ' '), std::string("x") + std::string(5000, 'a')}) {
    EXPECT_EQ(tok.decode(tok.encode(s, false)), s);
  }
}

TEST(BpeGpt2, BosEosAndControlTokens) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  const Tokenizer& tok = gpt2_from_vocab_merges();
  EXPECT_EQ(tok.encode("hello", true, true), (std::vector<int32_t>{50256, 31373, 50256}));
  EXPECT_EQ(tok.decode({50256, 31373, 50256}), "hello");
  EXPECT_EQ(tok.token_to_piece(50256), "");
  EXPECT_EQ(tok.token_to_piece(220), " ");
  EXPECT_EQ(tok.token_to_id("<|endoftext|>"), 50256);
  EXPECT_EQ(tok.token_to_id("Ġthe"), 262);
  EXPECT_EQ(tok.token_to_id("no such piece"), -1);
  // Out-of-range ids decode to nothing rather than crash.
  EXPECT_EQ(tok.decode({-5, 31373, 1 << 30}), "hello");
  EXPECT_EQ(tok.token_to_piece(-1), "");
}

TEST(BpeGpt2, SpecialTokensArePlainTextUnlessAsked) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  const Tokenizer& tok = gpt2_from_vocab_merges();
  // As text, "<|endoftext|>" is seven ordinary tokens (tiktoken/gpt-3-encoder do the same).
  EXPECT_EQ(tok.encode("<|endoftext|>", false), (std::vector<int32_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(tok.encode_with_special("<|endoftext|>", false), (std::vector<int32_t>{50256}));
}

TEST(BpeGpt2, SpecialTokenGoldenFromHfTokenizers) {
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/tokenizer.json");
  const std::string path = test::source_dir() + "/tests/golden/tokenizer/gpt2_special.json";
  const auto j = nlohmann::json::parse(test::read_file(path));
  const Tokenizer& tok = gpt2_from_hf_json();
  ASSERT_GE(j["cases"].size(), 5u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok.encode_with_special(text, false), c["ids_special"].get<std::vector<int32_t>>())
        << testing::PrintToString(text);
    EXPECT_EQ(tok.encode(text, false), c["ids_plain"].get<std::vector<int32_t>>())
        << testing::PrintToString(text);
  }
}

}  // namespace
}  // namespace llmopt
