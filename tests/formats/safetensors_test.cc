// safetensors reader: the shared TinyStories-656K file, a synthetic sharded directory, and
// F16/BF16 tensors with an unaligned data section.
#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "formats_test_helpers.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::data_path;

constexpr const char* kSafetensors = "models/tinystories-656k/model.safetensors";
constexpr const char* kConfig = "models/tinystories-656k/config.json";
constexpr const char* kStQ8Gguf = "models/tinystories-656k/TinyStories-656K-Q8_0.gguf";

TEST(SafetensorsTest, TinyStories656K) {
  LLMOPT_REQUIRE_DATA(kSafetensors);
  LLMOPT_REQUIRE_DATA(kConfig);
  auto src = open_safetensors(data_path(kSafetensors));
  ASSERT_TRUE(src.ok()) << src.status().message();
  const WeightSource& s = **src;
  const auto cfg = nlohmann::json::parse(test::read_file(data_path(kConfig)));
  const int64_t hidden = cfg["hidden_size"], n_layer = cfg["num_hidden_layers"], vocab = cfg["vocab_size"];
  const int64_t ffn = cfg["intermediate_size"];
  const int64_t kv_dim =
      hidden / cfg["num_attention_heads"].get<int64_t>() * cfg["num_key_value_heads"].get<int64_t>();
  EXPECT_EQ(hidden, 128);
  EXPECT_EQ(n_layer, 2);
  EXPECT_EQ(vocab, 2048);
  EXPECT_EQ(s.tensors().size(), static_cast<size_t>(2 + 9 * n_layer));
  auto shape_of = [&](const std::string& name) {
    const TensorView* v = s.find(name);
    EXPECT_NE(v, nullptr) << name;
    if (v != nullptr) {
      EXPECT_EQ(v->type, DType::kF32) << name;
    }
    return v == nullptr ? std::vector<int64_t>{} : v->shape;
  };
  EXPECT_EQ(shape_of("lm_head.weight"), (std::vector<int64_t>{vocab, hidden}));
  EXPECT_EQ(shape_of("model.norm.weight"), (std::vector<int64_t>{hidden}));
  for (int64_t il = 0; il < n_layer; ++il) {
    const std::string p = "model.layers." + std::to_string(il) + ".";
    EXPECT_EQ(shape_of(p + "self_attn.q_proj.weight"), (std::vector<int64_t>{hidden, hidden}));
    EXPECT_EQ(shape_of(p + "self_attn.k_proj.weight"), (std::vector<int64_t>{kv_dim, hidden}));
    EXPECT_EQ(shape_of(p + "self_attn.v_proj.weight"), (std::vector<int64_t>{kv_dim, hidden}));
    EXPECT_EQ(shape_of(p + "self_attn.o_proj.weight"), (std::vector<int64_t>{hidden, hidden}));
    EXPECT_EQ(shape_of(p + "mlp.gate_proj.weight"), (std::vector<int64_t>{ffn, hidden}));
    EXPECT_EQ(shape_of(p + "mlp.up_proj.weight"), (std::vector<int64_t>{ffn, hidden}));
    EXPECT_EQ(shape_of(p + "mlp.down_proj.weight"), (std::vector<int64_t>{hidden, ffn}));
    EXPECT_EQ(shape_of(p + "input_layernorm.weight"), (std::vector<int64_t>{hidden}));
    EXPECT_EQ(shape_of(p + "post_attention_layernorm.weight"), (std::vector<int64_t>{hidden}));
  }
  EXPECT_EQ(s.metadata().get_string("safetensors.format"), "pt");
  EXPECT_EQ(s.metadata().get_string("safetensors.model.embed_tokens.weight"), "lm_head.weight");
  EXPECT_EQ(s.tensors().front().name, "lm_head.weight");  // the header's order is kept

  // The llama.cpp conversion kept the norms in F32: they must be byte-identical.
  if (test::have_data(kStQ8Gguf)) {
    auto g = GgufFile::open(data_path(kStQ8Gguf));
    ASSERT_TRUE(g.ok()) << g.status().message();
    const std::pair<std::string, std::string> pairs[] = {
        {"output_norm.weight", "model.norm.weight"},
        {"blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"},
        {"blk.1.ffn_norm.weight", "model.layers.1.post_attention_layernorm.weight"}};
    for (const auto& [gname, hname] : pairs) {
      const TensorView* a = (*g)->find(gname);
      const TensorView* b = s.find(hname);
      ASSERT_TRUE(a != nullptr && b != nullptr) << gname;
      ASSERT_EQ(a->nbytes, b->nbytes);
      EXPECT_EQ(std::memcmp(a->data, b->data, a->nbytes), 0) << gname;
    }
  }
}

// Builds a safetensors image from a header and a data section.
std::string st_image(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  test::patch<uint64_t>(out, 0, header.size());
  return out + header + data;
}

std::string as_string(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

TEST(SafetensorsTest, ShardedDirectory) {
  const std::string dir = test::temp_dir();
  const auto a = test::pattern_bytes(2 * 3 * 4, 1), b = test::pattern_bytes(4 * 2, 2),
             c = test::pattern_bytes(5 * 2, 3);
  test::write_file(dir + "/model-00001-of-00002.safetensors",
                   st_image(R"({"__metadata__":{"format":"pt"},)"
                                     R"("w.a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                                     R"("w.b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})",
                                     as_string(a) + as_string(b)));
  test::write_file(
      dir + "/model-00002-of-00002.safetensors",
      st_image(R"({"w.c":{"dtype":"F16","shape":[5],"data_offsets":[0,10]}})", as_string(c)));
  test::write_file(dir + "/model.safetensors.index.json",
                   R"({"metadata":{"total_size":42},"weight_map":{"w.a":"model-00001-of-00002.safetensors",)"
                   R"("w.c":"model-00002-of-00002.safetensors","w.b":"model-00001-of-00002.safetensors"}})");
  for (const std::string& path : {dir + "/model.safetensors.index.json", dir}) {
    auto src = open_safetensors(path);
    ASSERT_TRUE(src.ok()) << src.status().message();
    const WeightSource& s = **src;
    ASSERT_EQ(s.tensors().size(), 3u);
    const TensorView* ta = s.find("w.a");
    const TensorView* tb = s.find("w.b");
    const TensorView* tc = s.find("w.c");
    ASSERT_TRUE(ta && tb && tc);
    EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(tb->type, DType::kBF16);
    EXPECT_EQ(tc->type, DType::kF16);
    EXPECT_EQ(std::memcmp(ta->data, a.data(), a.size()), 0);
    EXPECT_EQ(std::memcmp(tb->data, b.data(), b.size()), 0);
    EXPECT_EQ(std::memcmp(tc->data, c.data(), c.size()), 0);
    EXPECT_EQ(s.metadata().get_string("safetensors.format"), "pt");
  }
}

TEST(SafetensorsTest, ShardMissingATensorIsAnError) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/s1.safetensors",
                   st_image(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"));
  test::write_file(dir + "/index.json", R"({"weight_map":{"x":"s1.safetensors","y":"s1.safetensors"}})");
  auto src = open_safetensors(dir + "/index.json");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("'y'"), std::string::npos) << src.status().message();
  test::write_file(dir + "/index2.json", R"({"weight_map":{"x":"../s1.safetensors"}})");
  src = open_safetensors(dir + "/index2.json");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("plain file name"), std::string::npos) << src.status().message();
}

TEST(SafetensorsTest, UnalignedDataIsCopied) {
  // A 3-byte header leaves the F32 data at an odd address inside the image.
  const auto w = test::pattern_bytes(8, 7);
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header += "  ";  // make 8 + header length odd
  if ((8 + header.size()) % 2 == 0) header += " ";
  const std::string image = st_image(header, as_string(w));
  std::vector<uint8_t> buf(image.size() + 1);
  std::memcpy(buf.data(), image.data(), image.size());
  auto src = parse_safetensors(buf.data(), image.size(), "mem");
  ASSERT_TRUE(src.ok()) << src.status().message();
  const TensorView* v = (*src)->find("w");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v->data) % 4, 0u);
  EXPECT_EQ(std::memcmp(v->data, w.data(), 8), 0);
}

}  // namespace
}  // namespace llmopt
