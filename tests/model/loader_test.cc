// Loader tests against published references: stories260K (llama2.c .bin + tokenizer.bin, and its GGUF)
// reproduces llama2.c's documented greedy story; TinyStories-656K (HF directory and llama.cpp's Q8_0
// GGUF) reproduces the reference greedy ids; HF -> GGUF -> load keeps logits bit-exact; synthetic HF
// GPT-2 / LLaMA directories match an independent float64 NumPy implementation in HF's own layout.
#include "model/loader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "loader_test_util.h"
#include "model/convert.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::all_logits;
using test::greedy;

// llama2.c doc/stories260K.md, run.c -z tok512.bin -t 0.0 (quoted up to its ellipsis).
constexpr const char* kStories260KGreedy =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, "
    "she "
    "saw a big, red ball.";

// README reference: TinyStories-656K greedy ids from BOS (F32 weights).
const std::vector<int32_t> kTinyStoriesIds = {
    1,    147,  201, 282,  215,  286, 598, 1662, 356, 499, 826,  1363, 1145, 1652, 615, 242,
    1482, 951,  628, 499,  826,  872, 921, 318,  385, 628, 499,  826,  617,  242,  198, 1047,
    425,  1939, 122, 1924, 1171, 94,  303, 328,  229, 521, 776,  115,  1139, 312,  447, 1456,
    319,  115,  133, 114,  100,  167, 753, 1665, 361, 303, 1900, 319,  467,  730,  717};

std::string lstrip(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
  return s.substr(i);
}

void expect_story(const std::string& model_path, const LoadOptions& opts) {
  auto model = load_model(model_path, opts);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  ASSERT_TRUE(m.has_tokenizer());
  std::vector<int32_t> prompt = m.tokenizer().encode("Once upon a time", /*add_bos=*/true);
  ASSERT_FALSE(prompt.empty());
  EXPECT_EQ(prompt[0], 1);
  ThreadPool pool(2);
  std::vector<int32_t> ids = greedy(m, prompt, 200, pool);
  const std::string text = lstrip(m.tokenizer().decode(ids));
  EXPECT_EQ(text.substr(0, std::strlen(kStories260KGreedy)), kStories260KGreedy) << "full text: " << text;
}

TEST(LoaderStories260K, Llama2cCheckpointReproducesReferenceStory) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.bin");
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  LoadOptions opts;
  opts.tokenizer_path = test::data_path("tokenizers/tok512/tok512.bin");
  expect_story(test::data_path("models/stories260K/stories260K.bin"), opts);
}

TEST(LoaderStories260K, GgufReproducesReferenceStory) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  expect_story(test::data_path("models/stories260K/stories260K.gguf"), {});
}

TEST(LoaderStories260K, Llama2cAndGgufGiveTheSameLogits) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.bin");
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  LoadOptions opts;
  opts.tokenizer_path = test::data_path("tokenizers/tok512/tok512.bin");
  auto bin = load_model(test::data_path("models/stories260K/stories260K.bin"), opts);
  auto gguf = load_model(test::data_path("models/stories260K/stories260K.gguf"));
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378, 30, 67, 100, 200, 300, 411};
  ThreadPool pool(2);
  EXPECT_EQ(all_logits(**bin, ids, pool), all_logits(**gguf, ids, pool));
  // The embedded vocabulary and tok512.bin encode alike.
  for (const char* s : {"Once upon a time", "Lily and Tom went to the park.", "Hello, 123 world!"}) {
    EXPECT_EQ((*bin)->tokenizer().encode(s, true), (*gguf)->tokenizer().encode(s, true)) << s;
  }
}

TEST(LoaderTinyStories, HfDirectoryReproducesReferenceIds) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/model.safetensors");
  auto model = load_model(test::data_path("models/tinystories-656k"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  EXPECT_TRUE(m.config().tied_head);
  EXPECT_EQ(m.config().n_vocab, 2048);
  EXPECT_EQ(m.config().n_head_kv, 4);
  EXPECT_EQ(m.source().find("output.weight"), nullptr);  // tied: only lm_head was stored
  EXPECT_EQ(m.tokenizer().bos(), 1);
  ThreadPool pool(2);
  std::vector<int32_t> ids = greedy(m, {1}, static_cast<int>(kTinyStoriesIds.size()) - 1, pool);
  EXPECT_EQ(ids, kTinyStoriesIds);
  EXPECT_EQ(
      lstrip(m.tokenizer().decode(ids)).rfind("Once upon a time, there was a little girl named Lily.", 0), 0u)
      << m.tokenizer().decode(ids);
}

TEST(LoaderTinyStories, Q8GgufReproducesFirst59ReferenceIds) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  auto model = load_model(test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(model.ok()) << model.status().message();
  ThreadPool pool(2);
  std::vector<int32_t> ids = greedy(**model, {1}, 59, pool);
  EXPECT_EQ(ids, std::vector<int32_t>(kTinyStoriesIds.begin(), kTinyStoriesIds.begin() + 60));
}

// LoadOptions::repack regroups the Q8_0 matrices (kernels/repack.h) where the kernels have a product
// for that layout: the reference ids still come out, the logits of every position equal the file
// layout's bit for bit, and writing the model back gives the file's tensor bytes.
TEST(LoaderTinyStories, RepackedQ8GgufGivesTheSameLogitsAndWritesTheFileBack) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  const std::string path = test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  const test::PlainAndPacked m = test::load_plain_and_packed(path, DType::kQ8_0);
  ASSERT_TRUE(m.ok);
  const int n_packed = m.n_packed;
  if (!kernels::prefers_r16(DType::kQ8_0)) {
    EXPECT_EQ(n_packed, 0) << "no kernel for the layout on " << kernels::isa_name() << ": nothing regrouped";
    GTEST_SKIP() << "the selected kernels (" << kernels::isa_name() << ") have no product for q8_0_r16";
  }
  // Every Q8_0 matrix of this model has a multiple of 16 rows: attention, FFN and the tied embedding.
  EXPECT_EQ(n_packed, 1 + 7 * m.packed->config().n_layer);
  EXPECT_EQ(m.packed->weights().tok_embd.type, DType::kQ8_0R16);
  ThreadPool pool(2);
  EXPECT_EQ(all_logits(*m.plain, kTinyStoriesIds, pool), all_logits(*m.packed, kTinyStoriesIds, pool));
  std::vector<int32_t> ids = greedy(*m.packed, {1}, 59, pool);
  EXPECT_EQ(ids, std::vector<int32_t>(kTinyStoriesIds.begin(), kTinyStoriesIds.begin() + 60));
  test::expect_writes_back_the_file(*m.packed, path, DType::kQ8_0,
                                    test::temp_dir() + "/tinystories-q8-repacked.gguf");
}

TEST(LoaderTinyStories, HfToGgufRoundTripKeepsLogitsExactly) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/model.safetensors");
  auto hf = load_model(test::data_path("models/tinystories-656k"));
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  const std::string out = test::temp_dir() + "/tinystories-f32.gguf";
  ConvertOptions copts;
  copts.outtype = DType::kF32;
  ASSERT_TRUE(write_gguf_model((*hf)->source(), out, copts).ok());
  auto gguf = load_model(out);
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  ThreadPool pool(2);
  EXPECT_EQ(all_logits(**hf, kTinyStoriesIds, pool), all_logits(**gguf, kTinyStoriesIds, pool));
  // The Q/K permutation matches llama.cpp's converter: the Q8_0 file's rows are the quantized rows.
  auto q8 = GgufFile::open(test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf"));
  auto f32 = GgufFile::open(out);
  ASSERT_TRUE(q8.ok() && f32.ok());
  for (const char* name : {"blk.0.attn_q.weight", "blk.1.attn_k.weight", "token_embd.weight"}) {
    const TensorView* a = (*q8)->find(name);
    const TensorView* b = (*f32)->find(name);
    ASSERT_TRUE(a != nullptr && b != nullptr) << name;
    ASSERT_EQ(a->shape, b->shape) << name;
    std::vector<float> row(static_cast<size_t>(a->cols()));
    for (int64_t r = 0; r < a->rows(); ++r) {
      kernels::dequantize_row(a->type, a->row(r), row.data(), a->cols());
      const float* ref = reinterpret_cast<const float*>(b->row(r));
      float amax = 0;
      for (int64_t c = 0; c < a->cols(); ++c) amax = std::max(amax, std::fabs(ref[c]));
      for (int64_t c = 0; c < a->cols(); ++c) {
        ASSERT_NEAR(row[c], ref[c], amax / 127.0f * 0.6f + 1e-6f) << name << " row " << r << " col " << c;
      }
    }
  }
  // Tokenizer survives the round trip.
  EXPECT_EQ((*hf)->tokenizer().encode("Once upon a time, Lily saw a cat.", true),
            (*gguf)->tokenizer().encode("Once upon a time, Lily saw a cat.", true));
}

// ---- synthetic HF directories vs the NumPy reference ---------------------------------------------

struct HfReference {
  std::string dir;
  std::vector<int32_t> ids;
  std::vector<double> logits;
};

HfReference make_hf_reference(const std::string& kind) {
  HfReference r;
  r.dir = test::temp_dir();
  r.dir.append("/").append(kind);
  std::string cmd = test::numpy_python();
  cmd.append(" ").append(test::source_dir()).append("/tests/model/hf_reference.py ").append(kind);
  cmd.append(" ").append(r.dir);
  if (kind == "gpt2") cmd.append(" ").append(test::data_path("tokenizers/gpt2"));
  test::CmdResult res = test::run_command(cmd);
  EXPECT_EQ(res.exit_code, 0) << res.err;
  auto ids = nlohmann::json::parse(test::read_file(r.dir + "/reference_ids.json"), nullptr, false);
  if (ids.is_array()) r.ids = ids.get<std::vector<int32_t>>();
  std::string raw = test::read_file(r.dir + "/reference_logits.f64");
  r.logits.resize(raw.size() / sizeof(double));
  std::memcpy(r.logits.data(), raw.data(), r.logits.size() * sizeof(double));
  return r;
}

void expect_matches_reference(const HfReference& ref, const Model& m) {
  ASSERT_FALSE(ref.ids.empty());
  const int64_t n_vocab = m.config().n_vocab;
  ASSERT_EQ(static_cast<int64_t>(ref.logits.size()), static_cast<int64_t>(ref.ids.size()) * n_vocab);
  ThreadPool pool(2);
  std::vector<float> got = all_logits(m, ref.ids, pool);
  ASSERT_EQ(got.size(), ref.logits.size());
  double amax = 0;
  for (double v : ref.logits) amax = std::max(amax, std::fabs(v));
  ASSERT_GT(amax, 1.0);  // logits large enough for a relative check to mean something
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - ref.logits[i]) / amax);
  EXPECT_LT(worst, 1e-4) << "max |diff| / max |logit| over all positions";
}

TEST(LoaderHfGpt2, Conv1DLayoutMatchesNumpyReference) {
  LLMOPT_REQUIRE_NUMPY();
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  HfReference ref = make_hf_reference("gpt2");
  auto model = load_model(ref.dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  EXPECT_EQ(m.config().arch, Arch::kGpt2);
  EXPECT_TRUE(m.config().tied_head);
  const TensorView* qkv = m.source().find("blk.0.attn_qkv.weight");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->shape, (std::vector<int64_t>{96, 32}));
  EXPECT_EQ(m.source().find("blk.0.attn_norm.weight")->type, DType::kF32);  // stored as f16
  EXPECT_EQ(m.tokenizer().encode("Hello world", false), (std::vector<int32_t>{15496, 995}));
  expect_matches_reference(ref, m);
}

TEST(LoaderHfLlama, RotateHalfAndGqaMatchNumpyReference) {
  LLMOPT_REQUIRE_NUMPY();
  HfReference ref = make_hf_reference("llama");
  auto model = load_model(ref.dir);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Model& m = **model;
  EXPECT_EQ(m.config().arch, Arch::kLlama);
  EXPECT_FALSE(m.config().tied_head);
  EXPECT_EQ(m.config().n_head_kv, 2);
  EXPECT_FLOAT_EQ(m.config().rope_theta, 5000.0f);
  EXPECT_EQ(m.source().find("blk.0.ffn_up.weight")->type, DType::kBF16);    // matrices keep their type
  EXPECT_EQ(m.source().find("blk.0.attn_norm.weight")->type, DType::kF32);  // vectors are widened
  EXPECT_EQ(m.tokenizer().encode("the and", true), (std::vector<int32_t>{1, 288, 291}));
  expect_matches_reference(ref, m);

  // The converted GGUF computes the same logits.
  const std::string out = test::temp_dir() + "/llama.gguf";
  ConvertOptions copts;
  copts.outtype = DType::kF32;
  ASSERT_TRUE(write_gguf_model(m.source(), out, copts).ok());
  auto gguf = load_model(out);
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  expect_matches_reference(ref, **gguf);
}

TEST(LoaderHfLlama, ExplicitTokenizerPathOverridesDirectory) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/tokenizer.json");
  LoadOptions opts;
  opts.tokenizer_path = test::data_path("models/tinystories-656k/tokenizer.json");
  auto src = open_model_source(test::data_path("models/tinystories-656k"), opts);
  ASSERT_TRUE(src.ok()) << src.status().message();
  EXPECT_EQ((*src)->metadata().get_string("tokenizer.ggml.model"), "llama");
}

// ---- tokenizer metadata ----------------------------------------------------------------------

void expect_same_spec(const TokenizerSpec& a, const TokenizerSpec& b) {
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.merges, b.merges);
  EXPECT_EQ(a.bos_id, b.bos_id);
  EXPECT_EQ(a.eos_id, b.eos_id);
  EXPECT_EQ(a.unk_id, b.unk_id);
  EXPECT_EQ(a.pad_id, b.pad_id);
  EXPECT_EQ(a.add_bos, b.add_bos);
  EXPECT_EQ(a.add_eos, b.add_eos);
  if (a.model == "llama") {
    EXPECT_EQ(a.add_space_prefix, b.add_space_prefix);
    EXPECT_EQ(a.remove_extra_whitespaces, b.remove_extra_whitespaces);
  }
}

TEST(LoaderTokenizerMetadata, SpecRoundTripsThroughMetadata) {
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  LLMOPT_REQUIRE_DATA("tokenizers/gpt2/vocab.json");
  std::vector<TokenizerSpec> specs;
  specs.push_back(*tokenizer_spec_from_llama2c(test::data_path("tokenizers/tok512/tok512.bin")));
  specs.push_back(*tokenizer_spec_from_vocab_merges(test::data_path("tokenizers/gpt2/vocab.json"),
                                                    test::data_path("tokenizers/gpt2/merges.txt")));
  for (const TokenizerSpec& spec : specs) {
    Metadata md;
    tokenizer_spec_to_metadata(spec, md);
    auto back = tokenizer_spec_from_metadata(md);
    ASSERT_TRUE(back.ok()) << back.status().message();
    expect_same_spec(spec, *back);
    if (!spec.scores.empty()) {
      EXPECT_EQ(spec.scores, back->scores);
    }
  }
}

TEST(LoaderTokenizerMetadata, LlamaCppDefaultsWhenKeysAreAbsent) {
  Metadata md;
  md.set("tokenizer.ggml.model", MetaValue::from_string("llama"));
  md.set("tokenizer.ggml.tokens", MetaValue::from_strings({"<unk>", "<s>", "</s>", "a"}));
  auto spm = tokenizer_spec_from_metadata(md);
  ASSERT_TRUE(spm.ok()) << spm.status().message();
  EXPECT_EQ(spm->unk_id, 0);
  EXPECT_EQ(spm->bos_id, 1);
  EXPECT_EQ(spm->eos_id, 2);
  EXPECT_TRUE(spm->add_bos);
  EXPECT_TRUE(spm->add_space_prefix);
  md.set("tokenizer.ggml.model", MetaValue::from_string("gpt2"));
  md.set("tokenizer.ggml.padding_token_id", MetaValue::from_u32(0xFFFFFFFFu));  // llama.cpp's "none"
  auto bpe = tokenizer_spec_from_metadata(md);
  ASSERT_TRUE(bpe.ok()) << bpe.status().message();
  EXPECT_FALSE(bpe->add_bos);
  EXPECT_EQ(bpe->pad_id, -1);
  EXPECT_EQ(bpe->bos_id, -1);
}

std::vector<std::string> first_stories(size_t n) {
  std::string text = test::read_file(test::data_path("text/tinystories-valid-first1000.txt"));
  std::vector<std::string> out;
  const std::string sep = "\n<|endoftext|>\n";
  size_t pos = 0;
  while (out.size() < n) {
    size_t end = text.find(sep, pos);
    if (end == std::string::npos) break;
    out.push_back(text.substr(pos, end - pos));
    pos = end + sep.size();
  }
  return out;
}

// A merges-only SentencePiece-style vocabulary is written with scores derived from the merge order;
// a score-driven tokenizer (as llama.cpp's) then gives the same ids as the merge list.
TEST(LoaderTokenizerMetadata, MergeDerivedScoresReproduceMergeTokenization) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/tokenizer.json");
  LLMOPT_REQUIRE_DATA("text/tinystories-valid-first1000.txt");
  auto spec = tokenizer_spec_from_hf_json(test::data_path("models/tinystories-656k/tokenizer.json"));
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_FALSE(spec->merges.empty());
  ASSERT_TRUE(spec->scores.empty());
  Metadata md;
  tokenizer_spec_to_metadata(*spec, md);
  auto scores = md.get_float_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.has_value());
  auto scored = tokenizer_spec_from_metadata(md);
  ASSERT_TRUE(scored.ok());
  scored->merges.clear();  // force the score-driven path
  auto by_merges = Tokenizer::create(*spec);
  auto by_scores = Tokenizer::create(*scored);
  ASSERT_TRUE(by_merges.ok() && by_scores.ok());
  size_t n_tokens = 0;
  for (const std::string& story : first_stories(200)) {
    auto a = (*by_merges)->encode(story, true);
    auto b = (*by_scores)->encode(story, true);
    ASSERT_EQ(a, b) << story;
    n_tokens += a.size();
  }
  EXPECT_GT(n_tokens, 10000u);
}

}  // namespace
}  // namespace llmopt
