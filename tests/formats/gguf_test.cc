// GGUF reader and writer on the shared model files and on synthetic files: counts, types,
// metadata, and read -> write -> read round trips.
#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "formats_test_helpers.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::data_path;

constexpr const char* kStoriesGguf = "models/stories260K/stories260K.gguf";
constexpr const char* kQ8Gguf = "models/tinystories-656k/TinyStories-656K-Q8_0.gguf";
constexpr const char* kVocabGguf = "tokenizers/gpt2/ggml-vocab-gpt-2.gguf";

std::unique_ptr<GgufFile> open_or_fail(const std::string& path) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? std::move(f).value() : nullptr;
}

TEST(GgufTest, Stories260K) {
  LLMOPT_REQUIRE_DATA(kStoriesGguf);
  auto f = open_or_fail(data_path(kStoriesGguf));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 48u);
  EXPECT_EQ(f->metadata().get_string("general.architecture"), "llama");
  auto tokens = f->metadata().get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_EQ(tokens->size(), 512u);
  EXPECT_EQ(f->metadata().get_int("llama.embedding_length"), 64);
  EXPECT_EQ(f->metadata().get_int("llama.block_count"), 5);
  for (const auto& t : f->tensors()) {
    EXPECT_EQ(t.view.type, DType::kF32) << t.name;
    EXPECT_EQ(t.view.nbytes, static_cast<size_t>(t.view.numel()) * 4) << t.name;
  }
  const TensorView* emb = f->find("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));
  const TensorView* wk = f->find("blk.0.attn_k.weight");
  ASSERT_NE(wk, nullptr);
  EXPECT_EQ(wk->shape, (std::vector<int64_t>{32, 64}));  // kv_dim = 64 * 4 / 8
  const TensorView* norm = f->find("output_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(f->find("no.such.tensor"), nullptr);
}

TEST(GgufTest, TinyStoriesQ8_0) {
  LLMOPT_REQUIRE_DATA(kQ8Gguf);
  auto f = open_or_fail(data_path(kQ8Gguf));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 20u);
  EXPECT_EQ(f->metadata().get_int("general.file_type"), 7);
  int n_q8 = 0;
  for (const auto& t : f->tensors()) {
    if (t.view.type == DType::kQ8_0) {
      ++n_q8;
      EXPECT_EQ(t.view.nbytes, static_cast<size_t>(t.view.numel() / 32 * 34)) << t.name;
    } else {
      EXPECT_EQ(t.view.type, DType::kF32) << t.name;
      EXPECT_EQ(t.view.shape.size(), 1u) << t.name;  // only the norms stay F32
    }
  }
  EXPECT_EQ(n_q8, 15);  // token_embd + 7 matrices in each of 2 layers
  const TensorView* q = f->find("blk.1.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{128, 128}));
  EXPECT_EQ(q->row_bytes(), 4u * 34u);
}

TEST(GgufTest, Gpt2VocabOnly) {
  LLMOPT_REQUIRE_DATA(kVocabGguf);
  auto f = open_or_fail(data_path(kVocabGguf));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->tensors().size(), 0u);
  EXPECT_EQ(f->metadata().get_string("general.architecture"), "gpt2");
  EXPECT_EQ(f->metadata().get_string("tokenizer.ggml.model"), "gpt2");
  auto tokens = f->metadata().get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.has_value());
  EXPECT_EQ(tokens->size(), 50257u);
  EXPECT_EQ((*tokens)[50256], "<|endoftext|>");
  auto merges = f->metadata().get_string_array("tokenizer.ggml.merges");
  ASSERT_TRUE(merges.has_value());
  EXPECT_EQ(merges->size(), 50000u);
  EXPECT_EQ(f->metadata().get_int("tokenizer.ggml.bos_token_id"), 50256);
}

// Reads `rel`, writes it back with GgufWriter, reads the copy: metadata and tensors must match,
// and, as the writer lays files out exactly as llama.cpp does, the file bytes too.
void check_round_trip(const std::string& rel) {
  auto a = open_or_fail(data_path(rel));
  ASSERT_NE(a, nullptr);
  GgufWriter w;
  for (const auto& [k, v] : a->metadata().entries()) w.metadata().set(k, v);
  for (const auto& t : a->tensors()) w.add_tensor(t.name, t.view);
  const std::string out = test::temp_dir() + "/copy.gguf";
  Status st = w.write(out);
  ASSERT_TRUE(st.ok()) << st.message();
  auto b = open_or_fail(out);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->version(), 3u);
  EXPECT_TRUE(a->metadata() == b->metadata());
  ASSERT_EQ(a->tensors().size(), b->tensors().size());
  for (size_t k = 0; k < a->tensors().size(); ++k) {
    const auto& ta = a->tensors()[k];
    const auto& tb = b->tensors()[k];
    EXPECT_EQ(ta.name, tb.name);
    EXPECT_EQ(ta.view.type, tb.view.type);
    EXPECT_EQ(ta.view.shape, tb.view.shape);
    ASSERT_EQ(ta.view.nbytes, tb.view.nbytes) << ta.name;
    EXPECT_EQ(std::memcmp(ta.view.data, tb.view.data, ta.view.nbytes), 0) << ta.name;
  }
  EXPECT_TRUE(test::read_file(data_path(rel)) == test::read_file(out)) << "file bytes differ for " << rel;
}

TEST(GgufRoundTrip, Stories260K) {
  LLMOPT_REQUIRE_DATA(kStoriesGguf);
  check_round_trip(kStoriesGguf);
}

TEST(GgufRoundTrip, TinyStoriesQ8_0) {
  LLMOPT_REQUIRE_DATA(kQ8Gguf);
  check_round_trip(kQ8Gguf);
}

TEST(GgufRoundTrip, Gpt2VocabOnly) {
  LLMOPT_REQUIRE_DATA(kVocabGguf);
  check_round_trip(kVocabGguf);
}

MetaValue scalar(MetaType t, uint64_t u, int64_t i, double f) {
  MetaValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

MetaValue array_of(MetaType elem, std::vector<MetaValue> items) {
  MetaValue v;
  v.type = MetaType::kArray;
  v.elem_type = elem;
  v.arr = std::move(items);
  return v;
}

TEST(GgufRoundTrip, EveryMetadataTypeAndTensorType) {
  GgufWriter w;
  Metadata& md = w.metadata();
  md.set("u8", scalar(MetaType::kU8, 255, 255, 0));
  md.set("i8", scalar(MetaType::kI8, static_cast<uint64_t>(int64_t{-128}), -128, 0));
  md.set("u16", scalar(MetaType::kU16, 65535, 65535, 0));
  md.set("i16", scalar(MetaType::kI16, static_cast<uint64_t>(int64_t{-32768}), -32768, 0));
  md.set("u32", MetaValue::from_u32(4000000000u));
  md.set("i32", MetaValue::from_i32(-2000000000));
  md.set("f32", MetaValue::from_f32(-1.5e-7f));
  md.set("f32.nan", MetaValue::from_f32(std::numeric_limits<float>::quiet_NaN()));
  md.set("bool.true", MetaValue::from_bool(true));
  md.set("bool.false", MetaValue::from_bool(false));
  md.set("string", MetaValue::from_string(std::string("h\xc3\xa9llo \0 world", 14)));
  md.set("string.empty", MetaValue::from_string(""));
  md.set("u64", MetaValue::from_u64(std::numeric_limits<uint64_t>::max()));
  md.set("i64", scalar(MetaType::kI64, 0, std::numeric_limits<int64_t>::min(), 0));
  md.set("f64", scalar(MetaType::kF64, 0, 0, 3.141592653589793));
  md.set("arr.strings", MetaValue::from_strings({"x", "", "yz"}));
  md.set("arr.f32", MetaValue::from_f32s({1.0f, -2.5f, 1e30f}));
  md.set("arr.i32", MetaValue::from_i32s({-1, 0, 7}));
  md.set("arr.empty", array_of(MetaType::kU16, {}));
  md.set("arr.bool", array_of(MetaType::kBool, {MetaValue::from_bool(true), MetaValue::from_bool(false)}));
  md.set("arr.nested",
         array_of(MetaType::kArray, {array_of(MetaType::kU8, {scalar(MetaType::kU8, 1, 1, 0)}),
                                     array_of(MetaType::kString, {MetaValue::from_string("deep")}),
                                     array_of(MetaType::kArray, {array_of(MetaType::kF64, {})})}));
  md.set("general.alignment", MetaValue::from_u32(64));

  // One tensor of every type in the dtype table; the innermost extent is one block (or 3 plain
  // elements), the outer one 2.
  std::vector<std::vector<uint8_t>> keep;
  std::vector<std::pair<std::string, TensorView>> added;
  uint32_t seed = 10;
  for (uint32_t id = 0; id < 64; ++id) {
    auto info = dtype_info(id);
    if (!info) continue;
    const int64_t inner = info->block_size == 1 ? 3 : info->block_size;
    TensorView v;
    v.type = info->type;
    v.shape = {2, inner};
    v.nbytes = 2 * (inner / info->block_size) * info->type_size;
    keep.push_back(test::pattern_bytes(v.nbytes, seed++));
    v.data = keep.back().data();
    const std::string name = std::string("t.") + info->name;
    w.add_tensor(name, v);
    added.emplace_back(name, v);
  }
  ASSERT_EQ(added.size(), 20u);

  const std::string path = test::temp_dir() + "/all.gguf";
  Status st = w.write(path);
  ASSERT_TRUE(st.ok()) << st.message();
  auto f = open_or_fail(path);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_TRUE(f->metadata() == md);
  std::vector<std::string> keys;
  for (const auto& e : f->metadata().entries()) keys.push_back(e.first);
  std::vector<std::string> want;
  for (const auto& e : md.entries()) want.push_back(e.first);
  EXPECT_EQ(keys, want);  // order is kept
  EXPECT_EQ(f->metadata().find("string")->s, std::string("h\xc3\xa9llo \0 world", 14));
  EXPECT_TRUE(std::isnan(f->metadata().get_float("f32.nan").value()));
  EXPECT_EQ(f->metadata().get_int("i8"), -128);
  EXPECT_EQ(f->metadata().get_int("u64"), std::nullopt);  // does not fit in int64
  EXPECT_EQ(f->metadata().find("u64")->u, std::numeric_limits<uint64_t>::max());
  ASSERT_EQ(f->tensors().size(), added.size());
  for (size_t k = 0; k < added.size(); ++k) {
    const auto& t = f->tensors()[k];
    EXPECT_EQ(t.name, added[k].first);
    EXPECT_EQ(t.view.type, added[k].second.type);
    EXPECT_EQ(t.view.shape, added[k].second.shape);
    ASSERT_EQ(t.view.nbytes, added[k].second.nbytes);
    EXPECT_EQ(std::memcmp(t.view.data, added[k].second.data, t.view.nbytes), 0) << t.name;
    EXPECT_EQ(static_cast<size_t>(t.view.data - f->tensors()[0].view.data) % 64, 0u) << t.name;
  }
}

TEST(GgufRoundTrip, ParseFromMemoryMatchesOpen) {
  const std::string dir = test::temp_dir();
  auto g = test::write_small_gguf(dir);
  auto f = GgufFile::parse(reinterpret_cast<const uint8_t*>(g.bytes.data()), g.bytes.size(), "mem");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->origin(), "mem");
  ASSERT_EQ((*f)->tensors().size(), 2u);
  const TensorView* q = (*f)->find("blk.0.w");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->type, DType::kQ8_0);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(std::memcmp(q->data, g.q8_bytes.data(), g.q8_bytes.size()), 0);
}

TEST(GgufRoundTrip, WriterRejectsInconsistentTensors) {
  const std::string dir = test::temp_dir();
  std::vector<uint8_t> bytes(64);
  TensorView v;
  v.type = DType::kF32;
  v.shape = {4, 4};
  v.data = bytes.data();
  v.nbytes = 60;  // shape needs 64
  {
    GgufWriter w;
    w.add_tensor("x", v);
    Status st = w.write(dir + "/a.gguf");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("'x'"), std::string::npos) << st.message();
  }
  {
    GgufWriter w;
    v.nbytes = 64;
    w.add_tensor("x", v);
    w.add_tensor("x", v);
    Status st = w.write(dir + "/b.gguf");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("duplicate"), std::string::npos) << st.message();
  }
  {
    GgufWriter w;
    w.metadata().set("general.alignment", MetaValue::from_u32(48));
    Status st = w.write(dir + "/c.gguf");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("power of two"), std::string::npos) << st.message();
  }
  {
    GgufWriter w;
    MetaValue bad = MetaValue::from_strings({"a"});
    bad.arr.push_back(MetaValue::from_u32(1));  // element type differs from the array's
    w.metadata().set("k", bad);
    Status st = w.write(dir + "/d.gguf");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("'k'"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace llmopt
