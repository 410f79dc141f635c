// Bad input for every loader and for Tokenizer::create: each must come back as a Status whose message
// names the file (for loaders) and the problem, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>

#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {
namespace {

std::string bin_entry(float score, int32_t len, const std::string& bytes) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &score, 4);
  std::memcpy(s.data() + 4, &len, 4);
  return s + bytes;
}

std::string u32(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

std::string valid_llama2c_bytes() {
  std::string f = u32(5);
  f += bin_entry(0, 5, "<unk>") + bin_entry(0, 3, "<s>") + bin_entry(0, 4, "</s>");
  f += bin_entry(0, 6, "<0x41>");
  f += bin_entry(-1, 1, " ") + bin_entry(-2, 1, "h") + bin_entry(-3, 1, "i") + bin_entry(-0.5f, 2, "hi") +
       bin_entry(-0.1f, 3, " hi");
  return f;
}

void expect_error(const Status& st, std::initializer_list<std::string> fragments) {
  ASSERT_FALSE(st.ok());
  for (const std::string& f : fragments) EXPECT_NE(st.message().find(f), std::string::npos) << st.message();
}

template <class T>
void expect_error(const Result<T>& r, std::initializer_list<std::string> fragments) {
  expect_error(r.status(), fragments);
}

TEST(TokenizerLoaderLlama2c, ValidTinyFile) {
  const std::string path = test::temp_dir() + "/tok.bin";
  test::write_file(path, valid_llama2c_bytes());
  auto spec = tokenizer_spec_from_llama2c(path);
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->tokens.size(), 9u);
  EXPECT_EQ(spec->tokens[8], "\xE2\x96\x81hi");
  EXPECT_EQ(spec->token_types[3], static_cast<int32_t>(TokenType::kByte));
  auto tok = Tokenizer::create(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ((*tok)->encode("hi", true), (std::vector<int32_t>{1, 8}));
  EXPECT_EQ((*tok)->encode("A", false), (std::vector<int32_t>{4, 3}));
  EXPECT_EQ((*tok)->decode({1, 8, 4, 3}), "hi A");
}

TEST(TokenizerLoaderLlama2c, BadFiles) {
  const std::string dir = test::temp_dir();
  auto load = [&](const std::string& name, const std::string& bytes) {
    test::write_file(dir + "/" + name, bytes);
    return tokenizer_spec_from_llama2c(dir + "/" + name);
  };
  expect_error(tokenizer_spec_from_llama2c(dir + "/missing.bin"), {"missing.bin"});
  expect_error(tokenizer_spec_from_llama2c(dir), {"not a regular file"});
  expect_error(load("empty.bin", ""), {"empty.bin", "too short"});
  const std::string good = valid_llama2c_bytes();
  expect_error(load("trunc_header.bin", good.substr(0, good.size() - 2)),
               {"trunc_header.bin", "past the end"});
  expect_error(load("trunc_entry.bin", good + std::string(5, '\0')),
               {"trunc_entry.bin", "truncated entry", "token 9"});
  expect_error(load("negative.bin", u32(4) + bin_entry(0, -3, "")), {"negative.bin", "negative length"});
  expect_error(load("huge.bin", u32(4) + bin_entry(0, 1 << 30, "abc")), {"huge.bin", "past the end"});
  expect_error(load("few.bin", u32(4) + bin_entry(0, 1, "a")), {"few.bin", "at least"});
  const float nan = std::numeric_limits<float>::quiet_NaN();
  expect_error(load("nan.bin", u32(4) + bin_entry(nan, 1, "a") + good.substr(4)), {"nan.bin", "non-finite"});
}

const char* kTinyHfVocab = R"("vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "\u2581": 4})";

std::string hf_json(const std::string& model_extra, const std::string& top_extra = "") {
  return std::string(R"({"normalizer": {"type": "Sequence", "normalizers": [)"
                     R"({"type": "Prepend", "prepend": "\u2581"},)"
                     R"({"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},)") +
         top_extra + R"("model": {"type": "BPE", )" + kTinyHfVocab + model_extra + "}}";
}

TEST(TokenizerLoaderHf, ValidTinyFile) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/tokenizer.json", hf_json(R"(, "merges": [["a", "b"]], "unk_token": "<unk>")"));
  auto spec = tokenizer_spec_from_hf_json(dir + "/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->model, "llama");
  EXPECT_EQ(spec->merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(spec->unk_id, 0);
  auto tok = Tokenizer::create(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ((*tok)->encode("ab a", false), (std::vector<int32_t>{4, 3, 4, 1}));
}

TEST(TokenizerLoaderHf, BadFiles) {
  const std::string dir = test::temp_dir();
  const std::string path = dir + "/tokenizer.json";
  auto load = [&](const std::string& text) {
    test::write_file(path, text);
    return tokenizer_spec_from_hf_json(path);
  };
  expect_error(tokenizer_spec_from_hf_json(dir + "/nope.json"), {"nope.json"});
  expect_error(load("{not json"), {"tokenizer.json", "not valid JSON"});
  expect_error(load("[1, 2]"), {"tokenizer.json", "model"});
  expect_error(load(R"({"model": {"type": "Unigram", "vocab": []}})"), {"tokenizer.json", "Unigram"});
  expect_error(load(R"({"model": {"type": "WordPiece", "vocab": {}}})"), {"WordPiece"});
  expect_error(load(hf_json(R"(, "merges": ["a c"])")), {"tokenizer.json", "'c' is not in the vocabulary"});
  expect_error(load(hf_json(R"(, "merges": ["b a"])")), {"tokenizer.json", "merged token 'ba'"});
  expect_error(load(hf_json(R"(, "merges": ["ab"])")), {"tokenizer.json", "two tokens"});
  expect_error(load(hf_json(R"(, "merges": [7])")), {"tokenizer.json", "merge #0"});
  expect_error(load(hf_json(R"(, "merges": {"a": 1})")), {"merges is not an array"});
  expect_error(
      load(
          R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 2}}, "pre_tokenizer": {"type": "ByteLevel"}})"),
      {"tokenizer.json", "no token has id 1"});
  expect_error(
      load(
          R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}, "pre_tokenizer": {"type": "ByteLevel"}})"),
      {"id 0 is used by both"});
  expect_error(
      load(R"({"model": {"type": "BPE", "vocab": {"a": -1}}, "pre_tokenizer": {"type": "ByteLevel"}})"),
      {"out-of-range id -1"});
  expect_error(
      load(R"({"model": {"type": "BPE", "vocab": {"a": "x"}}, "pre_tokenizer": {"type": "ByteLevel"}})"),
      {"non-integer id"});
  expect_error(
      load(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Whitespace"}})"),
      {"pre-tokenizer 'Whitespace'"});
  expect_error(load(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "normalizer": {"type": "NFKC"}})"),
               {"normalizer 'NFKC'"});
  expect_error(load(R"({"model": {"type": "BPE", "vocab": {"a": 0}}})"), {"unsupported BPE tokenizer"});
  expect_error(load(hf_json("", R"("added_tokens": [{"id": "zero", "content": "<s>"}],)")),
               {"non-integer id"});
  expect_error(load(hf_json("", R"("added_tokens": 5,)")), {"added_tokens is not an array"});
  expect_error(load(hf_json("", R"("pre_tokenizer": {"type": 3},)")), {"tokenizer.json", "unexpected JSON"});
}

TEST(TokenizerLoaderHf, BadTokenizerConfig) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/tokenizer.json", hf_json(""));
  test::write_file(dir + "/tokenizer_config.json", "{oops");
  expect_error(tokenizer_spec_from_hf_json(dir + "/tokenizer.json"),
               {"tokenizer_config.json", "not valid JSON"});
  test::write_file(dir + "/tokenizer_config.json", R"({"bos_token": "<s>"})");
  expect_error(tokenizer_spec_from_hf_json(dir + "/tokenizer.json"),
               {"tokenizer_config.json", "bos_token '<s>' is not in the vocabulary"});
  test::write_file(
      dir + "/tokenizer_config.json",
      R"({"bos_token": {"content": "a"}, "eos_token": "b", "add_bos_token": false, "add_eos_token": true})");
  auto spec = tokenizer_spec_from_hf_json(dir + "/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->bos_id, 1);
  EXPECT_EQ(spec->eos_id, 2);
  EXPECT_FALSE(spec->add_bos);
  EXPECT_TRUE(spec->add_eos);
}

TEST(TokenizerLoaderVocabMerges, BadFiles) {
  const std::string dir = test::temp_dir();
  const std::string vocab = dir + "/vocab.json";
  const std::string merges = dir + "/merges.txt";
  test::write_file(vocab, R"({"a": 0, "b": 1, "ab": 2})");
  test::write_file(merges, "#version: 0.2\na b\n");
  auto ok = tokenizer_spec_from_vocab_merges(vocab, merges);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(ok->bos_id, -1);  // no <|endoftext|> in this vocabulary

  expect_error(tokenizer_spec_from_vocab_merges(dir + "/none.json", merges), {"none.json"});
  expect_error(tokenizer_spec_from_vocab_merges(vocab, dir + "/none.txt"), {"none.txt"});
  test::write_file(merges, "#version: 0.2\nab\n");
  expect_error(tokenizer_spec_from_vocab_merges(vocab, merges), {"merges.txt", "line 2"});
  test::write_file(merges, "a z\n");
  expect_error(tokenizer_spec_from_vocab_merges(vocab, merges),
               {"merges.txt", "'z' is not in the vocabulary"});
  test::write_file(vocab, R"(["a", "b"])");
  expect_error(tokenizer_spec_from_vocab_merges(vocab, merges), {"vocab.json", "not a JSON object"});
  test::write_file(vocab, "");
  expect_error(tokenizer_spec_from_vocab_merges(vocab, merges), {"vocab.json", "not valid JSON"});
}

TokenizerSpec tiny_spm_spec() {
  TokenizerSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "a", "b"};
  s.scores = {0, -1, -2};
  return s;
}

TEST(TokenizerCreate, RejectsInconsistentSpecs) {
  TokenizerSpec s = tiny_spm_spec();
  EXPECT_TRUE(Tokenizer::create(s).ok());
  s.model = "wordpiece";
  expect_error(Tokenizer::create(s), {"unsupported tokenizer model 'wordpiece'"});
  s = tiny_spm_spec();
  s.tokens.clear();
  s.scores.clear();
  expect_error(Tokenizer::create(s), {"empty vocabulary"});
  s = tiny_spm_spec();
  s.scores.pop_back();
  expect_error(Tokenizer::create(s), {"2 scores for 3 tokens"});
  s = tiny_spm_spec();
  s.token_types = {1, 1};
  expect_error(Tokenizer::create(s), {"2 token types for 3 tokens"});
  s.token_types = {1, 9, 1};
  expect_error(Tokenizer::create(s), {"token 1 has invalid token type 9"});
  s = tiny_spm_spec();
  s.bos_id = 3;
  expect_error(Tokenizer::create(s), {"BOS id 3 is out of range"});
  s = tiny_spm_spec();
  s.eos_id = -7;
  expect_error(Tokenizer::create(s), {"EOS id -7"});
  s = tiny_spm_spec();
  s.scores.clear();
  expect_error(Tokenizer::create(s), {"needs token scores or merges"});
  s = tiny_spm_spec();
  s.merges = {"a c"};
  expect_error(Tokenizer::create(s), {"merge #0 'a c'", "'c' is not in the vocabulary"});
  // A byte-level vocabulary must cover every byte.
  TokenizerSpec g;
  g.model = "gpt2";
  g.tokens = {"a", "b"};
  expect_error(Tokenizer::create(g), {"no token for byte 0x00"});
}

}  // namespace
}  // namespace llmopt
