// Synthetic presets (shapes, parameter counts, determinism, the synthesized byte-level tokenizer) and
// write_gguf_model (types and bytes per output type, file_type, metadata carried over, quantized
// tensors copied, the converted file loads and computes like the source).
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "loader_test_util.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/synth.h"
#include "test_util.h"

namespace llmopt {
namespace {

int64_t count_params(const WeightSource& src) {
  int64_t n = 0;
  for (const NamedTensor& t : src.tensors()) n += t.view.numel();
  return n;
}

// Parameter count from the shape alone, the way llama.cpp counts a GGUF's tensors.
int64_t expected_params(const ModelConfig& c) {
  const int64_t V = c.n_vocab, d = c.n_embd, ff = c.n_ff, q = c.q_dim(), kv = c.kv_dim(), L = c.n_layer;
  int64_t n = V * d;
  if (c.arch == Arch::kGpt2) {
    n += static_cast<int64_t>(c.n_ctx_train) * d + 2 * d;
    n += L * (4 * d + d * (q + 2 * kv) + (q + 2 * kv) + q * d + d + 2 * d * ff + ff + d);
  } else {
    n += d + L * (2 * d + d * q + 2 * d * kv + q * d + 3 * d * ff);
  }
  if (!c.tied_head) n += V * d;
  return n;
}

std::unique_ptr<MemoryWeightSource> synth(const std::string& preset, uint64_t seed = 1) {
  SynthOptions o;
  o.config = *find_synth_preset(preset);
  o.seed = seed;
  auto r = synth_model(o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(SynthPresets, NamedShapes) {
  for (const char* name : {"gpt2-124M", "gpt2-355M", "gpt2-tiny", "llama-110M", "llama-1B", "llama-tiny"}) {
    EXPECT_TRUE(find_synth_preset(name).has_value()) << name;
  }
  EXPECT_FALSE(find_synth_preset("gpt5").has_value());
  ModelConfig g = *find_synth_preset("gpt2-124M");
  EXPECT_EQ(g.arch, Arch::kGpt2);
  EXPECT_EQ(g.n_embd, 768);
  EXPECT_EQ(g.n_layer, 12);
  EXPECT_EQ(g.n_head, 12);
  EXPECT_EQ(g.n_ff, 3072);
  EXPECT_EQ(g.n_ctx_train, 1024);
  EXPECT_EQ(g.n_vocab, 50257);
  EXPECT_FALSE(g.tied_head);
  ModelConfig g3 = *find_synth_preset("gpt2-355M");
  EXPECT_EQ(g3.n_embd, 1024);
  EXPECT_EQ(g3.n_layer, 24);
  EXPECT_EQ(g3.n_head, 16);
  EXPECT_EQ(g3.n_ff, 4096);
  ModelConfig l = *find_synth_preset("llama-110M");
  EXPECT_EQ(l.arch, Arch::kLlama);
  EXPECT_EQ(l.n_embd, 768);
  EXPECT_EQ(l.n_layer, 12);
  EXPECT_EQ(l.n_head, 12);
  EXPECT_EQ(l.n_head_kv, 4);
  EXPECT_EQ(l.n_ff, 2048);
  EXPECT_EQ(l.n_vocab, 32000);
  EXPECT_EQ(l.n_ctx_train, 2048);
  EXPECT_TRUE(l.tied_head);
  ModelConfig b = *find_synth_preset("llama-1B");
  EXPECT_EQ(b.n_embd, 2048);
  EXPECT_EQ(b.n_layer, 16);
  EXPECT_EQ(b.n_head, 32);
  EXPECT_EQ(b.n_head_kv, 8);
  EXPECT_EQ(b.n_ff, 8192);
  EXPECT_EQ(b.n_vocab, 32000);
  EXPECT_TRUE(b.tied_head);
  // Llama-3.2-1B's body with a 32000-token tied embedding: 1.04B parameters.
  EXPECT_EQ(expected_params(b), 1038682112);
}

TEST(SynthPresets, Gpt2Small124MHasGpt2Shapes) {
  auto src = synth("gpt2-124M");
  ASSERT_NE(src, nullptr);
  const ModelConfig c = *find_synth_preset("gpt2-124M");
  // GPT-2 small: 124,439,808 parameters, plus the untied head.
  EXPECT_EQ(count_params(*src), 124439808LL + 50257LL * 768);
  EXPECT_EQ(count_params(*src), expected_params(c));
  EXPECT_EQ(src->find("token_embd.weight")->shape, (std::vector<int64_t>{50257, 768}));
  EXPECT_EQ(src->find("position_embd.weight")->shape, (std::vector<int64_t>{1024, 768}));
  EXPECT_EQ(src->find("blk.11.attn_qkv.weight")->shape, (std::vector<int64_t>{2304, 768}));
  EXPECT_EQ(src->find("blk.11.ffn_down.weight")->shape, (std::vector<int64_t>{768, 3072}));
  EXPECT_EQ(src->find("output.weight")->shape, (std::vector<int64_t>{50257, 768}));
  // N(0, 0.02) weights, unit norms, zero biases.
  const TensorView* e = src->find("token_embd.weight");
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < e->numel(); ++i) {
    sum += e->f32()[i];
    sq += static_cast<double>(e->f32()[i]) * e->f32()[i];
  }
  const double mean = sum / e->numel();
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(std::sqrt(sq / e->numel() - mean * mean), 0.02, 1e-4);
  EXPECT_EQ(src->find("blk.0.attn_norm.weight")->f32()[5], 1.0f);
  EXPECT_EQ(src->find("blk.0.attn_qkv.bias")->f32()[5], 0.0f);
  auto cfg = config_from_metadata(src->metadata());
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->n_embd, 768);
  EXPECT_EQ(cfg->n_vocab, 50257);
}

TEST(SynthPresets, Llama110MHasTiedHeadAndGqaShapes) {
  auto src = synth("llama-110M");
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(count_params(*src), expected_params(*find_synth_preset("llama-110M")));
  EXPECT_EQ(src->find("output.weight"), nullptr);
  EXPECT_EQ(src->find("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{256, 768}));
  EXPECT_EQ(src->find("blk.0.ffn_gate.weight")->shape, (std::vector<int64_t>{2048, 768}));
}

TEST(SynthModel, DeterministicForASeed) {
  auto a = synth("llama-tiny", 7), b = synth("llama-tiny", 7), c = synth("llama-tiny", 8);
  ASSERT_TRUE(a && b && c);
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  bool differs = false;
  for (size_t i = 0; i < a->tensors().size(); ++i) {
    const TensorView& x = a->tensors()[i].view;
    const TensorView& y = b->tensors()[i].view;
    ASSERT_EQ(x.nbytes, y.nbytes);
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << a->tensors()[i].name;
    const TensorView& z = c->tensors()[i].view;
    differs |= std::memcmp(x.data, z.data, x.nbytes) != 0;
  }
  EXPECT_TRUE(differs);
  // Different tensors get different streams.
  EXPECT_NE(std::memcmp(a->find("blk.0.attn_q.weight")->data, a->find("blk.1.attn_q.weight")->data, 64), 0);
}

TEST(SynthModel, SynthesizedByteLevelTokenizerWorks) {
  auto src = synth("gpt2-tiny");
  ASSERT_NE(src, nullptr);
  std::shared_ptr<const WeightSource> shared(std::move(src));
  auto model = load_model_from_source(shared);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const Tokenizer& tok = (*model)->tokenizer();
  EXPECT_EQ(tok.n_vocab(), 512);
  EXPECT_EQ(tok.eos(), 511);
  EXPECT_EQ(tok.spec().tokens[511], "<|endoftext|>");
  EXPECT_EQ(tok.encode("Hi!\n", false), (std::vector<int32_t>{72, 105, 33, 10}));
  EXPECT_EQ(tok.decode({72, 105, 0xC3, 0xA9}), "Hi\xC3\xA9");
  ThreadPool pool(2);
  std::vector<float> logits = test::all_logits(**model, {72, 105, 33}, pool);
  ASSERT_EQ(logits.size(), 3u * 512);
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(SynthModel, GivenTokenizerSetsVocabulary) {
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  SynthOptions o;
  o.config = *find_synth_preset("llama-tiny");
  o.config.n_vocab = 1000;
  o.tokenizer = *tokenizer_spec_from_llama2c(test::data_path("tokenizers/tok512/tok512.bin"));
  auto src = synth_model(o);
  ASSERT_TRUE(src.ok()) << src.status().message();
  EXPECT_EQ((*src)->find("token_embd.weight")->shape[0], 512);
  std::shared_ptr<const WeightSource> shared(std::move(src).value());
  auto model = load_model_from_source(shared);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->tokenizer().encode("Once", true).front(), 1);
}

TEST(SynthModel, RejectsImpossibleShapes) {
  SynthOptions o;
  o.config = *find_synth_preset("llama-tiny");
  o.config.n_head_kv = 3;
  EXPECT_FALSE(synth_model(o).ok());
  o.config = *find_synth_preset("gpt2-tiny");
  o.config.n_vocab = 100;  // no room for the byte-level vocabulary
  auto r = synth_model(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("n_vocab"), std::string::npos);
}

// ---- convert ---------------------------------------------------------------------------------

struct Converted {
  std::string path;
  std::unique_ptr<GgufFile> file;
};

Converted convert(const WeightSource& src, DType outtype, std::vector<std::string>* progress = nullptr) {
  Converted c;
  c.path = test::temp_dir() + "/out.gguf";
  ConvertOptions o;
  o.outtype = outtype;
  if (progress) o.progress = [&](size_t i, size_t n, const std::string& name) { progress->push_back(name); };
  Status st = write_gguf_model(src, c.path, o);
  EXPECT_TRUE(st.ok()) << st.message();
  auto f = GgufFile::open(c.path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  if (f.ok()) c.file = std::move(f).value();
  return c;
}

class ConvertTypes : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(ConvertTypes, MatricesInOutTypeVectorsInF32) {
  const auto& [preset, outtype] = GetParam();
  auto src = synth(preset);
  ASSERT_NE(src, nullptr);
  std::vector<std::string> progress;
  Converted c = convert(*src, outtype, &progress);
  ASSERT_NE(c.file, nullptr);
  const uint32_t want_ftype = outtype == DType::kF32 ? 0 : outtype == DType::kF16 ? 1 : 32;
  EXPECT_EQ(c.file->metadata().get_int("general.file_type"), want_ftype);
  EXPECT_EQ(c.file->metadata().get_string("general.name"), preset);
  for (const auto& [key, value] : src->metadata().entries()) {
    const MetaValue* v = c.file->metadata().find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_TRUE(*v == value) << key;
  }
  ASSERT_EQ(c.file->tensors().size(), src->tensors().size());
  EXPECT_EQ(progress.size(), src->tensors().size());
  for (const NamedTensor& t : src->tensors()) {
    const TensorView* out = c.file->find(t.name);
    ASSERT_NE(out, nullptr) << t.name;
    EXPECT_EQ(out->shape, t.view.shape) << t.name;
    const DType want = t.view.shape.size() == 2 ? outtype : DType::kF32;
    ASSERT_EQ(out->type, want) << t.name;
    const float* f = t.view.f32();
    for (int64_t i = 0; i < t.view.numel(); ++i) {
      if (want == DType::kF32) {
        ASSERT_EQ(reinterpret_cast<const float*>(out->data)[i], f[i]) << t.name;
      } else {
        uint16_t h;
        std::memcpy(&h, out->data + 2 * i, 2);
        ASSERT_EQ(h, want == DType::kF16 ? fp32_to_fp16(f[i]) : fp32_to_bf16(f[i])) << t.name << " " << i;
      }
    }
  }
  // The converted file loads and computes close to the f32 source.
  std::shared_ptr<const WeightSource> shared(std::move(src));
  auto ref = load_model_from_source(shared);
  auto got = load_model(c.path);
  ASSERT_TRUE(ref.ok() && got.ok()) << (got.ok() ? ref.status().message() : got.status().message());
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 2, 3, 100, 200, 300, 7};
  std::vector<float> a = test::all_logits(**ref, ids, pool), b = test::all_logits(**got, ids, pool);
  ASSERT_EQ(a.size(), b.size());
  float amax = 0, worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    amax = std::max(amax, std::fabs(a[i]));
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  }
  EXPECT_LE(worst, outtype == DType::kF32 ? 0.0f : 0.05f * amax);
}

INSTANTIATE_TEST_SUITE_P(ConvertPresets, ConvertTypes,
                         ::testing::Combine(::testing::Values("gpt2-tiny", "llama-tiny"),
                                            ::testing::Values(DType::kF32, DType::kF16, DType::kBF16)),
                         [](const auto& info) {
                           std::string n =
                               std::get<0>(info.param) + "_" + dtype_name(std::get<1>(info.param));
                           for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return n;
                         });

TEST(ConvertGguf, QuantizedTensorsAreCopiedAndFileTypeKept) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  auto src = open_model_source(test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(src.ok()) << src.status().message();
  Converted c = convert(**src, DType::kF16);
  ASSERT_NE(c.file, nullptr);
  EXPECT_EQ(c.file->metadata().get_int("general.file_type"), 7);
  for (const NamedTensor& t : (*src)->tensors()) {
    const TensorView* out = c.file->find(t.name);
    ASSERT_NE(out, nullptr);
    EXPECT_EQ(out->type, t.view.type) << t.name;
    ASSERT_EQ(out->nbytes, t.view.nbytes);
    EXPECT_EQ(std::memcmp(out->data, t.view.data, t.view.nbytes), 0) << t.name;
  }
  EXPECT_TRUE((*src)->metadata().get_string_array("tokenizer.ggml.tokens") ==
              c.file->metadata().get_string_array("tokenizer.ggml.tokens"));
}

TEST(ConvertGguf, Llama2cCheckpointConvertsWithTokenizer) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.bin");
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  LoadOptions opts;
  opts.tokenizer_path = test::data_path("tokenizers/tok512/tok512.bin");
  auto src = open_model_source(test::data_path("models/stories260K/stories260K.bin"), opts);
  ASSERT_TRUE(src.ok()) << src.status().message();
  Converted c = convert(**src, DType::kF32);
  ASSERT_NE(c.file, nullptr);
  EXPECT_EQ(c.file->metadata().get_string("general.architecture"), "llama");
  EXPECT_EQ(c.file->metadata().get_string("tokenizer.ggml.model"), "llama");
  auto bin = load_model(test::data_path("models/stories260K/stories260K.bin"), opts);
  auto gguf = load_model(c.path);
  ASSERT_TRUE(bin.ok() && gguf.ok()) << (gguf.ok() ? bin.status().message() : gguf.status().message());
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 403, 407, 261, 378};
  EXPECT_EQ(test::all_logits(**bin, ids, pool), test::all_logits(**gguf, ids, pool));
  EXPECT_EQ((*bin)->tokenizer().encode("Once upon a time", true),
            (*gguf)->tokenizer().encode("Once upon a time", true));
}

// A GGUF whose norm vectors are f16 (as some converters write them) loads with f32 copies.
TEST(ConvertGguf, F16NormVectorsAreWidenedOnLoad) {
  auto src = synth("llama-tiny");
  ASSERT_NE(src, nullptr);
  GgufWriter w;
  for (const auto& [k, v] : src->metadata().entries()) w.metadata().set(k, v);
  std::vector<std::vector<uint16_t>> keep;
  for (const NamedTensor& t : src->tensors()) {
    if (t.view.shape.size() != 1) {
      w.add_tensor(t.name, t.view);
      continue;
    }
    std::vector<uint16_t>& h = keep.emplace_back(static_cast<size_t>(t.view.numel()));
    for (size_t i = 0; i < h.size(); ++i) h[i] = fp32_to_fp16(t.view.f32()[i]);
    TensorView v = t.view;
    v.type = DType::kF16;
    v.data = reinterpret_cast<const uint8_t*>(h.data());
    v.nbytes = h.size() * 2;
    w.add_tensor(t.name, v);
  }
  const std::string path = test::temp_dir() + "/f16-norms.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto got = load_model(path);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ((*got)->source().find("blk.0.attn_norm.weight")->type, DType::kF32);
  EXPECT_EQ((*got)->source().find("output_norm.weight")->type, DType::kF32);
  std::shared_ptr<const WeightSource> shared(std::move(src));
  auto ref = load_model_from_source(shared);
  ASSERT_TRUE(ref.ok());
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {5, 6, 7, 300};
  EXPECT_EQ(test::all_logits(**ref, ids, pool), test::all_logits(**got, ids, pool));  // norms are exactly 1
}

TEST(ConvertGguf, RejectsUnsupportedOutType) {
  auto src = synth("llama-tiny");
  ASSERT_NE(src, nullptr);
  ConvertOptions o;
  o.outtype = DType::kQ2_K;
  Status st = write_gguf_model(*src, test::temp_dir() + "/x.gguf", o);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("q2_K"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace llmopt

namespace llmopt {
namespace {

// llama.cpp refuses a byte-level ("gpt2") vocabulary without tokenizer.ggml.merges, even an empty one.
TEST(SynthTokenizer, ByteLevelVocabAlwaysHasMergesKey) {
  SynthOptions o;
  o.config = *find_synth_preset("gpt2-tiny");
  auto src = synth_model(o);
  ASSERT_TRUE(src.ok()) << src.status().message();
  const MetaValue* merges = (*src)->metadata().find("tokenizer.ggml.merges");
  ASSERT_NE(merges, nullptr);
  EXPECT_EQ(merges->type, MetaType::kArray);
  EXPECT_EQ(merges->elem_type, MetaType::kString);
}

}  // namespace
}  // namespace llmopt
