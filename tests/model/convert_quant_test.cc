// write_gguf_model with quantized output types: the TinyStories-656K Q8_0 golden (our conversion of
// the HF safetensors must equal llama.cpp's GGUF tensor for tensor, byte for byte), per-type tensor
// types and bytes, llama.cpp's fallback for rows that do not fit a block, file_type values, and the
// converted files loading and computing close to the f32 source.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "loader_test_util.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/synth.h"
#include "test_util.h"

namespace llmopt {
namespace {

std::unique_ptr<GgufFile> convert_to(const WeightSource& src, DType outtype, const std::string& path) {
  ConvertOptions o;
  o.outtype = outtype;
  Status st = write_gguf_model(src, path, o);
  EXPECT_TRUE(st.ok()) << st.message();
  if (!st.ok()) return nullptr;
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(f).value() : nullptr;
}

// The shared-data pair is a golden test for the Q8_0 quantizer and the HF -> GGUF layout (Q/K row
// permutation, names, which tensors stay F32): llama.cpp made the GGUF from the same safetensors.
TEST(ConvertQuantGolden, TinyStoriesQ8_0MatchesLlamaCppTensorForTensor) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/model.safetensors");
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  auto hf = open_model_source(test::data_path("models/tinystories-656k"));
  ASSERT_TRUE(hf.ok()) << hf.status().message();
  auto want = GgufFile::open(test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(want.ok()) << want.status().message();
  auto got = convert_to(**hf, DType::kQ8_0, test::temp_dir() + "/ts-q8_0.gguf");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->metadata().get_int("general.file_type"), 7);

  ASSERT_EQ(got->tensors().size(), (*want)->tensors().size());
  for (const NamedTensor& w : (*want)->tensors()) {
    const TensorView* g = got->find(w.name);
    ASSERT_NE(g, nullptr) << "missing tensor " << w.name;
    EXPECT_EQ(g->type, w.view.type) << w.name;
    EXPECT_EQ(g->shape, w.view.shape) << w.name;
    ASSERT_EQ(g->nbytes, w.view.nbytes) << w.name;
    size_t first_diff = g->nbytes;
    for (size_t i = 0; i < g->nbytes; ++i) {
      if (g->data[i] != w.view.data[i]) {
        first_diff = i;
        break;
      }
    }
    EXPECT_EQ(first_diff, g->nbytes) << w.name << ": first differing byte " << first_diff;
  }
}

// A source with matrices of several row lengths (f32), and a vector.
std::unique_ptr<MemoryWeightSource> shapes_source() {
  auto src = std::make_unique<MemoryWeightSource>("shapes");
  src->mutable_metadata().set("general.architecture", MetaValue::from_string("llama"));
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
      {"m256", {3, 256}}, {"m512", {2, 512}}, {"m96", {4, 96}}, {"m48", {2, 48}}, {"norm", {64}}};
  for (const auto& [name, shape] : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto* p = reinterpret_cast<float*>(
        src->add_owned_tensor(name, DType::kF32, shape, static_cast<size_t>(n) * sizeof(float)));
    for (int64_t i = 0; i < n; ++i) p[i] = dist(rng);
  }
  return src;
}

struct Expect {
  DType outtype;
  int64_t file_type;
  std::map<std::string, DType> types;  // per tensor
};

TEST(ConvertQuant, TypesFallbackFileTypeAndBytes) {
  auto src = shapes_source();
  const DType F16 = DType::kF16, F32 = DType::kF32;
  const Expect cases[] = {
      {DType::kQ8_0,
       7,
       {{"m256", DType::kQ8_0}, {"m512", DType::kQ8_0}, {"m96", DType::kQ8_0}, {"m48", F16}}},
      {DType::kQ4_0,
       2,
       {{"m256", DType::kQ4_0}, {"m512", DType::kQ4_0}, {"m96", DType::kQ4_0}, {"m48", F16}}},
      {DType::kQ4_1,
       3,
       {{"m256", DType::kQ4_1}, {"m512", DType::kQ4_1}, {"m96", DType::kQ4_1}, {"m48", F16}}},
      {DType::kQ5_0,
       8,
       {{"m256", DType::kQ5_0}, {"m512", DType::kQ5_0}, {"m96", DType::kQ5_0}, {"m48", F16}}},
      {DType::kQ5_1,
       9,
       {{"m256", DType::kQ5_1}, {"m512", DType::kQ5_1}, {"m96", DType::kQ5_1}, {"m48", F16}}},
      // llama.cpp's fallback: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16.
      {DType::kQ4_K,
       14,
       {{"m256", DType::kQ4_K}, {"m512", DType::kQ4_K}, {"m96", DType::kQ5_0}, {"m48", F16}}},
      {DType::kQ5_K,
       16,
       {{"m256", DType::kQ5_K}, {"m512", DType::kQ5_K}, {"m96", DType::kQ5_1}, {"m48", F16}}},
      {DType::kQ6_K,
       18,
       {{"m256", DType::kQ6_K}, {"m512", DType::kQ6_K}, {"m96", DType::kQ8_0}, {"m48", F16}}},
  };
  for (const Expect& e : cases) {
    SCOPED_TRACE(dtype_name(e.outtype));
    auto f = convert_to(*src, e.outtype, test::temp_dir() + "/shapes-" + dtype_name(e.outtype) + ".gguf");
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->metadata().get_int("general.file_type"), e.file_type);
    ASSERT_EQ(f->tensors().size(), src->tensors().size());
    for (const NamedTensor& t : src->tensors()) {
      const TensorView* out = f->find(t.name);
      ASSERT_NE(out, nullptr) << t.name;
      EXPECT_EQ(out->shape, t.view.shape) << t.name;
      const DType want = t.view.shape.size() == 1 ? F32 : e.types.at(t.name);
      ASSERT_EQ(out->type, want) << t.name;
      // Bytes: the rows written by the kernels' quantizer for that type (bit-exact with llama.cpp,
      // see tests/kernels/quantize_test.cc).
      const int64_t cols = t.view.cols(), rows = t.view.rows();
      const size_t row_bytes = dtype_row_bytes(want, cols).value();
      ASSERT_EQ(out->nbytes, row_bytes * static_cast<size_t>(rows)) << t.name;
      std::vector<uint8_t> row(row_bytes);
      for (int64_t r = 0; r < rows; ++r) {
        kernels::quantize_row(want, t.view.f32() + r * cols, row.data(), cols);
        ASSERT_EQ(std::memcmp(row.data(), out->data + static_cast<size_t>(r) * row_bytes, row_bytes), 0)
            << t.name << " row " << r;
      }
    }
  }
}

// Every quantized output of a small llama loads and computes close to the f32 source.
TEST(ConvertQuant, LlamaTinyLoadsAndComputesForEveryType) {
  SynthOptions so;
  so.config = *find_synth_preset("llama-tiny");
  so.seed = 3;
  auto made = synth_model(so);
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::shared_ptr<const WeightSource> src(std::move(made).value());
  auto ref = load_model_from_source(src);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 2, 3, 100, 200, 300, 7};
  const std::vector<float> a = test::all_logits(**ref, ids, pool);
  float amax = 0;
  for (float v : a) amax = std::max(amax, std::fabs(v));
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K,
                  DType::kQ5_K, DType::kQ6_K}) {
    SCOPED_TRACE(dtype_name(t));
    const std::string path = test::temp_dir() + "/tiny-" + dtype_name(t) + ".gguf";
    auto f = convert_to(*src, t, path);
    ASSERT_NE(f, nullptr);
    auto got = load_model(path);
    ASSERT_TRUE(got.ok()) << got.status().message();
    const std::vector<float> b = test::all_logits(**got, ids, pool);
    ASSERT_EQ(a.size(), b.size());
    float worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
    EXPECT_LE(worst, (t == DType::kQ8_0 ? 0.05f : 0.3f) * amax);
  }
}

// A llama whose rows fit the K-quant super-blocks (256 columns; the tiny preset's 64 do not), as Q4_K,
// Q5_K and Q6_K: regrouped at load where the kernels have a product for the layout, the logits equal the
// file layout's bit for bit, and writing the loaded model back gives the file's bytes.
TEST(ConvertQuant, KQuantsRegroupedAtLoadGiveTheSameLogitsAndWriteTheFileBack) {
  SynthOptions so;
  so.config = *find_synth_preset("llama-tiny");
  so.config.n_embd = 256;
  so.config.n_ff = 512;
  so.config.head_dim = so.config.n_embd / so.config.n_head;
  so.config.n_rot = so.config.head_dim;
  so.seed = 5;
  auto made = synth_model(so);
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::shared_ptr<const WeightSource> src(std::move(made).value());
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 2, 3, 100, 200, 300, 7, 9, 11};
  for (DType t : {DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    SCOPED_TRACE(dtype_name(t));
    const std::string path = test::temp_dir() + "/k256-" + dtype_name(t) + ".gguf";
    ASSERT_NE(convert_to(*src, t, path), nullptr);
    const test::PlainAndPacked m = test::load_plain_and_packed(path, t);
    ASSERT_TRUE(m.ok);
    const int n_packed = m.n_packed;
    if (!kernels::prefers_r16(t)) {
      EXPECT_EQ(n_packed, 0);
      continue;
    }
    // attention (4) and FFN (3) matrices of each layer, and the tied embedding
    EXPECT_EQ(n_packed, 1 + 7 * so.config.n_layer);
    EXPECT_EQ(test::all_logits(*m.plain, ids, pool), test::all_logits(*m.packed, ids, pool));
    test::expect_writes_back_the_file(*m.packed, path, t,
                                      test::temp_dir() + "/k256-" + dtype_name(t) + "-back.gguf");
  }
}

// F32 and F16 matrices regrouped at load run other arithmetic (one fma chain per output over k in
// order, against 16 lane sums), so logits are close rather than equal; a regrouped model gives the
// same bits for a position whether it is computed in a prefill of 9 tokens or one token at a time,
// and writes the file back exactly.
TEST(ConvertQuant, FloatMatricesRegroupedAtLoadStayCloseAndBatchInvariant) {
  SynthOptions so;
  so.config = *find_synth_preset("llama-tiny");
  so.seed = 6;
  auto made = synth_model(so);
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::shared_ptr<const WeightSource> src(std::move(made).value());
  ThreadPool pool(2);
  const std::vector<int32_t> ids = {1, 2, 3, 100, 200, 300, 7, 9, 11};
  for (DType t : {DType::kF32, DType::kF16}) {
    SCOPED_TRACE(dtype_name(t));
    const std::string path = test::temp_dir() + "/float-r16-" + dtype_name(t) + ".gguf";
    ASSERT_NE(convert_to(*src, t, path), nullptr);
    const test::PlainAndPacked m = test::load_plain_and_packed(path, t);
    ASSERT_TRUE(m.ok);
    const int n_packed = m.n_packed;
    if (!kernels::prefers_r16(t)) {
      EXPECT_EQ(n_packed, 0);
      continue;
    }
    EXPECT_EQ(n_packed, 1 + 7 * so.config.n_layer);  // every matrix of every layer, and the tied embedding
    const std::vector<float> a = test::all_logits(*m.plain, ids, pool), b = test::all_logits(*m.packed, ids, pool);
    ASSERT_EQ(a.size(), b.size());
    float scale = 0.0f;
    for (float v : a) scale = std::max(scale, std::fabs(v));
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4f * scale) << "logit " << i;
    // The same positions one token at a time (decode: one activation row per product).
    const int64_t n_vocab = m.packed->config().n_vocab;
    KvStore kv = test::kv_for(*m.packed, static_cast<int64_t>(ids.size()));
    const std::vector<int32_t> table = test::contiguous_table(kv);
    ForwardOutput out;
    for (size_t p = 0; p < ids.size(); ++p) {
      SeqInput in;
      in.tokens = std::span<const int32_t>(ids.data() + p, 1);
      in.pos0 = static_cast<int32_t>(p);
      in.block_table = table;
      in.logits = LogitsMode::kLast;
      m.packed->forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
      for (int64_t v = 0; v < n_vocab; ++v) ASSERT_EQ(out.logits[v], b[p * n_vocab + v]) << "position " << p;
    }
    test::expect_writes_back_the_file(*m.packed, path, t, test::temp_dir() + "/float-r16-" + dtype_name(t) + "-back.gguf");
  }
}

}  // namespace
}  // namespace llmopt

namespace llmopt {
namespace {

// requantize: a quantized source's matrices are dequantized and re-written. To F32 that is exact:
// every value equals the dequantized source value; without requantize they are copied as they are.
TEST(ConvertRequantize, QuantizedSourceDequantizesExactlyToF32) {
  LLMOPT_REQUIRE_DATA("models/tinystories-656k/TinyStories-656K-Q8_0.gguf");
  auto src = GgufFile::open(test::data_path("models/tinystories-656k/TinyStories-656K-Q8_0.gguf"));
  ASSERT_TRUE(src.ok());
  const std::string path = test::temp_dir() + "/requant-f32.gguf";
  ConvertOptions o;
  o.outtype = DType::kF32;
  o.requantize = true;
  ASSERT_TRUE(write_gguf_model(**src, path, o).ok());
  auto got = GgufFile::open(path);
  ASSERT_TRUE(got.ok());
  int n_quantized = 0;
  for (const NamedTensor& t : (*src)->tensors()) {
    const NamedTensor* g = nullptr;
    for (const NamedTensor& c : (*got)->tensors()) {
      if (c.name == t.name) g = &c;
    }
    ASSERT_NE(g, nullptr) << t.name;
    if (t.view.type != DType::kQ8_0) continue;
    ++n_quantized;
    ASSERT_EQ(g->view.type, DType::kF32) << t.name;
    const int64_t cols = t.view.cols();
    std::vector<float> row(static_cast<size_t>(cols));
    const size_t in_row = *dtype_row_bytes(t.view.type, cols);
    for (int64_t r = 0; r < t.view.rows(); ++r) {
      kernels::dequantize_row(t.view.type, t.view.data + r * in_row, row.data(), cols);
      ASSERT_EQ(std::memcmp(row.data(), g->view.data + r * cols * 4, static_cast<size_t>(cols) * 4), 0) << t.name;
    }
  }
  EXPECT_GT(n_quantized, 5);
  // Without requantize the quantized tensors pass through unchanged.
  o.requantize = false;
  ASSERT_TRUE(write_gguf_model(**src, path, o).ok());
  auto same = GgufFile::open(path);
  ASSERT_TRUE(same.ok());
  for (const NamedTensor& c : (*same)->tensors()) {
    if (c.name == "blk.0.attn_q.weight") {
      EXPECT_EQ(c.view.type, DType::kQ8_0);
    }
  }
}

}  // namespace
}  // namespace llmopt
