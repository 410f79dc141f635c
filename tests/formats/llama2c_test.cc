// llama2.c checkpoint reader: the shared stories260K.bin against its llama.cpp GGUF conversion,
// and synthetic checkpoints (tied and untied classifier).
#include "formats/llama2c.h"

#include <gtest/gtest.h>

#include <cstring>

#include "formats/gguf.h"
#include "formats_test_helpers.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::data_path;

constexpr const char* kStoriesBin = "models/stories260K/stories260K.bin";
constexpr const char* kL2cStoriesGguf = "models/stories260K/stories260K.gguf";

TEST(Llama2cTest, Stories260KMatchesItsGguf) {
  LLMOPT_REQUIRE_DATA(kStoriesBin);
  LLMOPT_REQUIRE_DATA(kL2cStoriesGguf);
  auto bin = open_llama2c(data_path(kStoriesBin));
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  auto gguf = GgufFile::open(data_path(kL2cStoriesGguf));
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  const WeightSource& b = **bin;
  const GgufFile& g = **gguf;

  // The classifier is tied in the .bin, so it exposes no output.weight; the GGUF stores a copy.
  EXPECT_EQ(b.tensors().size(), 47u);
  EXPECT_EQ(b.find("output.weight"), nullptr);
  for (const auto& t : g.tensors()) {
    const std::string name = t.name == "output.weight" ? "token_embd.weight" : t.name;
    const TensorView* v = b.find(name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->type, DType::kF32) << t.name;
    EXPECT_EQ(v->shape, t.view.shape) << t.name;
    ASSERT_EQ(v->nbytes, t.view.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(v->data, t.view.data, v->nbytes), 0) << t.name;
  }

  const Metadata& md = b.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "llama");
  EXPECT_EQ(md.get_int("llama.context_length"), 512);  // the .bin's seq_len (the GGUF says 2048)
  EXPECT_EQ(md.get_int("llama.vocab_size"), 512);
  EXPECT_EQ(md.get_float("llama.attention.layer_norm_rms_epsilon").value(), static_cast<double>(1e-5f));
  EXPECT_EQ(md.get_float("llama.rope.freq_base"), 10000.0);
  for (const char* key :
       {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.dimension_count"}) {
    EXPECT_EQ(md.get_int(key), g.metadata().get_int(key)) << key;
  }
  EXPECT_EQ(md.get_int("llama.attention.head_count_kv"), 4);
  EXPECT_EQ(md.get_int("llama.rope.dimension_count"), 8);

  const std::string raw = test::read_file(data_path(kStoriesBin));
  EXPECT_TRUE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()));
  const std::string graw = test::read_file(data_path(kL2cStoriesGguf));
  EXPECT_FALSE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(graw.data()), graw.size()));
}

// Writes a checkpoint whose weights are 0, 1, 2, ... as floats.
std::string synthetic_checkpoint(int32_t dim, int32_t hidden, int32_t layers, int32_t heads, int32_t kv_heads,
                                 int32_t vocab, int32_t seq_len) {
  const int64_t kv_dim = dim / heads * kv_heads;
  const int64_t v = vocab < 0 ? -vocab : vocab;
  int64_t n = v * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) + dim +
              seq_len * (dim / heads);
  if (vocab < 0) n += v * dim;
  std::string bytes(28 + n * 4, '\0');
  const int32_t header[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
  std::memcpy(bytes.data(), header, 28);
  for (int64_t k = 0; k < n; ++k) {
    const float f = static_cast<float>(k);
    std::memcpy(bytes.data() + 28 + k * 4, &f, 4);
  }
  return bytes;
}

TEST(Llama2cTest, SyntheticUntiedLayout) {
  const int32_t dim = 8, hidden = 12, layers = 2, heads = 4, kv_heads = 2, vocab = 10, seq = 3;
  const std::string path = test::temp_dir() + "/untied.bin";
  test::write_file(path, synthetic_checkpoint(dim, hidden, layers, heads, kv_heads, -vocab, seq));
  auto src = open_llama2c(path);
  ASSERT_TRUE(src.ok()) << src.status().message();
  const WeightSource& s = **src;
  EXPECT_EQ(s.tensors().size(), 1u + 9u * layers + 2u);
  EXPECT_EQ(s.tensors().front().name, "token_embd.weight");
  EXPECT_EQ(s.tensors().back().name, "output.weight");
  // First float of each tensor is its element offset in the weight stream.
  auto first = [&](const std::string& name) {
    const TensorView* v = s.find(name);
    EXPECT_NE(v, nullptr) << name;
    return v == nullptr ? -1.0f : v->f32()[0];
  };
  const int64_t kv_dim = 4;
  int64_t at = 0;
  EXPECT_EQ(first("token_embd.weight"), at);
  at += vocab * dim;
  EXPECT_EQ(first("blk.0.attn_norm.weight"), at);
  EXPECT_EQ(first("blk.1.attn_norm.weight"), at + dim);
  at += layers * dim;
  EXPECT_EQ(first("blk.1.attn_q.weight"), at + dim * dim);
  at += layers * dim * dim;
  EXPECT_EQ(first("blk.0.attn_k.weight"), at);
  EXPECT_EQ(s.find("blk.0.attn_k.weight")->shape, (std::vector<int64_t>{kv_dim, dim}));
  at += layers * kv_dim * dim;
  EXPECT_EQ(first("blk.1.attn_v.weight"), at + kv_dim * dim);
  at += layers * kv_dim * dim;
  EXPECT_EQ(first("blk.0.attn_output.weight"), at);
  at += layers * dim * dim;
  EXPECT_EQ(first("blk.1.ffn_norm.weight"), at + dim);
  at += layers * dim;
  EXPECT_EQ(first("blk.0.ffn_gate.weight"), at);
  EXPECT_EQ(s.find("blk.0.ffn_gate.weight")->shape, (std::vector<int64_t>{hidden, dim}));
  at += layers * hidden * dim;
  EXPECT_EQ(first("blk.1.ffn_down.weight"), at + dim * hidden);
  EXPECT_EQ(s.find("blk.1.ffn_down.weight")->shape, (std::vector<int64_t>{dim, hidden}));
  at += layers * dim * hidden;
  EXPECT_EQ(first("blk.0.ffn_up.weight"), at);
  at += layers * hidden * dim;
  EXPECT_EQ(first("output_norm.weight"), at);
  at += dim + seq * (dim / heads);  // skip freq_cis_real and freq_cis_imag
  EXPECT_EQ(first("output.weight"), at);
  EXPECT_EQ(s.find("output.weight")->shape, (std::vector<int64_t>{vocab, dim}));
  EXPECT_EQ(s.metadata().get_int("llama.vocab_size"), vocab);
}

TEST(Llama2cTest, SyntheticTiedAndTrailingBytes) {
  const std::string dir = test::temp_dir();
  std::string bytes = synthetic_checkpoint(8, 16, 1, 2, 2, 6, 4);
  EXPECT_TRUE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  test::write_file(dir + "/tied.bin", bytes);
  auto src = open_llama2c(dir + "/tied.bin");
  ASSERT_TRUE(src.ok()) << src.status().message();
  EXPECT_EQ((*src)->find("output.weight"), nullptr);
  EXPECT_EQ((*src)->tensors().size(), 11u);
  // Extra bytes after the weights are tolerated by the reader but not by the sniffer.
  bytes += std::string(16, '\0');
  EXPECT_FALSE(looks_like_llama2c(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  test::write_file(dir + "/extra.bin", bytes);
  EXPECT_TRUE(open_llama2c(dir + "/extra.bin").ok());
}

}  // namespace
}  // namespace llmopt
