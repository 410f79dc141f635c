// Ties the training math to the inference engine: parameters exported as GGUF by the training writer,
// loaded by model/loader and run by Model::forward give the same cross-entropy as the training
// forward pass.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <span>

#include "formats/gguf.h"
#include "model/kv_store.h"
#include "model/loader.h"
#include "test_util.h"
#include "train/export.h"
#include "train/transformer.h"
#include "train_test_util.h"

namespace llmopt::train {
namespace {

// Mean next-token cross-entropy of the engine's logits (in double).
double engine_loss(const Model& m, const std::vector<int32_t>& tokens, int64_t B, int64_t T) {
  const int32_t block = 16;
  const int32_t blocks_per_seq = static_cast<int32_t>((T + block - 1) / block);
  KvStore kv(m.config().n_layer, m.config().kv_dim(), static_cast<int32_t>(B) * blocks_per_seq, block);
  ThreadPool pool(2);
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(B));
  std::vector<SeqInput> in(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    for (int32_t i = 0; i < blocks_per_seq; ++i)
      tables[b].push_back(static_cast<int32_t>(b) * blocks_per_seq + i);
    in[b].tokens = std::span<const int32_t>(tokens.data() + b * (T + 1), static_cast<size_t>(T));
    in[b].pos0 = 0;
    in[b].block_table = tables[b];
    in[b].logits = LogitsMode::kAll;
  }
  ForwardOutput out;
  m.forward(in, kv, out, pool);
  const int64_t V = m.config().n_vocab;
  double sum = 0.0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < T; ++i) {
      const float* row = out.logits.data() + (out.row_offset[b] + i) * V;
      double mx = row[0];
      for (int64_t j = 1; j < V; ++j) mx = std::max(mx, static_cast<double>(row[j]));
      double s = 0.0;
      for (int64_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(row[j]) - mx);
      sum += std::log(s) + mx - row[tokens[b * (T + 1) + i + 1]];
    }
  }
  return sum / static_cast<double>(B * T);
}

void compare_with_engine(const ModelConfig& cfg_in, int64_t B, int64_t T, const char* label) {
  ModelConfig cfg = cfg_in;
  ASSERT_TRUE(validate_train_config(cfg).ok());
  const ParamLayout layout = make_param_layout(cfg);
  const std::vector<float> params = testing::perturbed_params(layout, 21, 0.1);
  const std::vector<int32_t> tokens =
      testing::random_tokens(static_cast<size_t>(B * (T + 1)), cfg.n_vocab, 4);

  const std::string path = test::temp_dir() + "/trained.gguf";
  ASSERT_TRUE(write_trained_gguf(layout, params, nullptr, "tiny", path).ok());
  LoadOptions lo;
  lo.require_tokenizer = false;
  auto model = load_model(path, lo);
  ASSERT_TRUE(model.ok()) << model.status().message();
  const ModelConfig& mc = (*model)->config();
  EXPECT_EQ(mc.arch, cfg.arch);
  EXPECT_EQ(mc.n_vocab, cfg.n_vocab);
  EXPECT_EQ(mc.n_head_kv, cfg.n_head_kv);
  EXPECT_EQ(mc.n_ff, cfg.n_ff);
  EXPECT_EQ(mc.tied_head, cfg.tied_head);

  // Every tensor comes back with its name, shape and bytes.
  auto gguf = GgufFile::open(path);
  ASSERT_TRUE(gguf.ok());
  for (const ParamTensor& t : layout.tensors) {
    const TensorView* v = (*gguf)->find(t.name);
    ASSERT_NE(v, nullptr) << t.name;
    EXPECT_EQ(v->type, DType::kF32);
    EXPECT_EQ(v->shape, t.shape) << t.name;
    EXPECT_EQ(0, std::memcmp(v->data, params.data() + t.offset, static_cast<size_t>(t.numel) * 4)) << t.name;
  }

  ThreadPool pool(2);
  Transformer<float> tr(layout);
  const double train_loss = tr.run(params.data(), tokens.data(), B, T, nullptr, pool);
  const double eng = engine_loss(**model, tokens, B, T);
  std::printf("[%s] training forward %.7f, engine %.7f, difference %.2e\n", label, train_loss, eng,
              std::fabs(train_loss - eng));
  EXPECT_NEAR(train_loss, eng, 1e-4);
  EXPECT_GT(train_loss, 0.5);  // not a degenerate comparison
}

TEST(TrainEngineMatch, LlamaGqa) { compare_with_engine(testing::tiny_llama(32, 60, 24), 3, 24, "llama"); }

TEST(TrainEngineMatch, Gpt2) { compare_with_engine(testing::tiny_gpt2(32, 60, 24), 3, 24, "gpt2"); }

TEST(TrainEngineMatch, LlamaUntiedHead) {
  ModelConfig c = testing::tiny_llama(32, 60, 24);
  c.tied_head = false;
  compare_with_engine(c, 3, 24, "llama-untied");
}

// T shorter than the context: the engine's positions 0..T-1 of a model with a longer context.
TEST(TrainEngineMatch, Gpt2ShortWindow) {
  compare_with_engine(testing::tiny_gpt2(32, 60, 24), 2, 10, "gpt2-short");
}

}  // namespace
}  // namespace llmopt::train
