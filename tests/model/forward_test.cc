// Forward-pass tests: small random GPT-2 and LLaMA models (MHA, GQA, MQA, untied head) are checked
// against an independent float64 NumPy implementation (numpy_ref.py, reading the model as GGUF),
// and the batched/paged paths are checked against the plain whole-sequence forward: token-by-token
// and chunked decode through the KV cache, mixed batches, non-contiguous block tables.
// Also: config/metadata validation and bind_weights' error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/config.h"
#include "model/kv_store.h"
#include "model/model.h"
#include "model/weights.h"
#include "test_util.h"

namespace llmopt {
namespace {

// ---- random models ---------------------------------------------------------------------------

ModelConfig gpt2_config() {
  ModelConfig c;
  c.arch = Arch::kGpt2;
  c.n_vocab = 97;
  c.n_ctx_train = 64;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 4;
  c.n_ff = 256;
  c.head_dim = 16;
  c.norm_eps = 1e-5f;
  return c;
}

// GQA by default: 8 query heads share 2 kv heads.
ModelConfig llama_config(int32_t n_head_kv = 2) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.n_vocab = 101;
  c.n_ctx_train = 128;
  c.n_embd = 64;
  c.n_layer = 2;
  c.n_head = 8;
  c.n_head_kv = n_head_kv;
  c.n_ff = 96;
  c.head_dim = 8;
  c.n_rot = 8;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  return c;
}

class RandomSource {
 public:
  RandomSource(const ModelConfig& cfg, uint64_t seed)
      : src_(std::make_shared<MemoryWeightSource>("random-" + std::string(arch_name(cfg.arch)))), rng_(seed) {
    config_to_metadata(cfg, src_->mutable_metadata());
  }
  // Adds an f32 tensor ~ N(mean, std) and returns its (mutable) data.
  float* add(const std::string& name, std::vector<int64_t> shape, float mean, float std) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    auto* p = reinterpret_cast<float*>(src_->add_owned_tensor(name, DType::kF32, shape, n * sizeof(float)));
    std::normal_distribution<float> dist(mean, std);
    for (int64_t i = 0; i < n; ++i) p[i] = dist(rng_);
    return p;
  }
  std::shared_ptr<MemoryWeightSource> source() const { return src_; }

 private:
  std::shared_ptr<MemoryWeightSource> src_;
  std::mt19937_64 rng_;
};

// Weights ~ N(0, 0.1), norm weights ~ N(1, 0.1), biases ~ N(0, 0.1); embeddings a little larger.
std::shared_ptr<MemoryWeightSource> make_source(const ModelConfig& c, bool untied, uint64_t seed = 7) {
  RandomSource r(c, seed);
  const int64_t e = c.n_embd, q = c.q_dim(), kv = c.kv_dim(), ff = c.n_ff, v = c.n_vocab;
  const bool gpt2 = c.arch == Arch::kGpt2;
  r.add("token_embd.weight", {v, e}, 0.0f, 0.3f);
  if (gpt2) r.add("position_embd.weight", {c.n_ctx_train, e}, 0.0f, 0.3f);
  for (int il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    r.add(p + "attn_norm.weight", {e}, 1.0f, 0.1f);
    if (gpt2) {
      r.add(p + "attn_norm.bias", {e}, 0.0f, 0.1f);
      r.add(p + "attn_qkv.weight", {q + 2 * kv, e}, 0.0f, 0.1f);
      r.add(p + "attn_qkv.bias", {q + 2 * kv}, 0.0f, 0.1f);
      r.add(p + "attn_output.weight", {e, q}, 0.0f, 0.1f);
      r.add(p + "attn_output.bias", {e}, 0.0f, 0.1f);
      r.add(p + "ffn_norm.weight", {e}, 1.0f, 0.1f);
      r.add(p + "ffn_norm.bias", {e}, 0.0f, 0.1f);
      r.add(p + "ffn_up.weight", {ff, e}, 0.0f, 0.1f);
      r.add(p + "ffn_up.bias", {ff}, 0.0f, 0.1f);
      r.add(p + "ffn_down.weight", {e, ff}, 0.0f, 0.1f);
      r.add(p + "ffn_down.bias", {e}, 0.0f, 0.1f);
    } else {
      r.add(p + "attn_q.weight", {q, e}, 0.0f, 0.2f);
      r.add(p + "attn_k.weight", {kv, e}, 0.0f, 0.2f);
      r.add(p + "attn_v.weight", {kv, e}, 0.0f, 0.1f);
      r.add(p + "attn_output.weight", {e, q}, 0.0f, 0.1f);
      r.add(p + "ffn_norm.weight", {e}, 1.0f, 0.1f);
      r.add(p + "ffn_gate.weight", {ff, e}, 0.0f, 0.1f);
      r.add(p + "ffn_up.weight", {ff, e}, 0.0f, 0.1f);
      r.add(p + "ffn_down.weight", {e, ff}, 0.0f, 0.1f);
    }
  }
  r.add("output_norm.weight", {e}, 1.0f, 0.1f);
  if (gpt2) r.add("output_norm.bias", {e}, 0.0f, 0.1f);
  if (untied) r.add("output.weight", {v, e}, 0.0f, 0.1f);
  return r.source();
}

// metadata -> config -> bind -> Model, as a loader would.
std::unique_ptr<Model> build_model(std::shared_ptr<const WeightSource> src) {
  Result<ModelConfig> cfg = config_from_metadata(src->metadata());
  EXPECT_TRUE(cfg.ok()) << cfg.status().message();
  if (!cfg.ok()) return nullptr;
  Result<Weights> w = bind_weights(*src, *cfg);
  EXPECT_TRUE(w.ok()) << w.status().message();
  if (!w.ok()) return nullptr;
  return std::make_unique<Model>(*cfg, std::move(*w), nullptr, std::move(src));
}

std::vector<int32_t> random_tokens(int n, int32_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, n_vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// ---- running and comparing -------------------------------------------------------------------

// One sequence in one call: returns its logits rows (for `mode`).
std::vector<float> run_one(const Model& m, std::span<const int32_t> tokens, int32_t pos0,
                           std::span<const int32_t> table, LogitsMode mode, KvStore& kv, ThreadPool& pool) {
  SeqInput in{tokens, pos0, table, mode};
  ForwardOutput out;
  m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  EXPECT_EQ(out.row_offset, std::vector<int64_t>{0});
  return out.logits;
}

// f32 unless asked: the references are f32.
KvStore make_kv(const Model& m, int32_t n_blocks, int32_t block_size, DType type = DType::kF32) {
  return KvStore::for_model(m.config(), n_blocks, block_size, type);
}

// Worst row error of `got` against `want`, both [n_rows, n_vocab]: for each row,
// max_j |got - want| / max(1, max_j |want|), i.e. relative to the row's largest logit (absolute
// for rows whose logits are all below 1 in magnitude).
double max_row_error(const float* got, const float* want, int64_t n_rows, int64_t n_vocab) {
  double worst = 0.0;
  for (int64_t r = 0; r < n_rows; ++r) {
    double scale = 1.0, err = 0.0;
    for (int64_t j = 0; j < n_vocab; ++j) scale = std::max(scale, std::fabs(double{want[r * n_vocab + j]}));
    for (int64_t j = 0; j < n_vocab; ++j) {
      const double d = std::fabs(double{got[r * n_vocab + j]} - double{want[r * n_vocab + j]});
      err = std::isnan(d) ? std::numeric_limits<double>::infinity() : std::max(err, d);
    }
    worst = std::max(worst, err / scale);
  }
  return worst;
}

double max_row_error(const std::vector<float>& got, const std::vector<float>& want, int64_t n_vocab) {
  EXPECT_EQ(got.size(), want.size());
  if (got.size() != want.size() || got.empty()) return std::numeric_limits<double>::infinity();
  return max_row_error(got.data(), want.data(), static_cast<int64_t>(got.size()) / n_vocab, n_vocab);
}

// Writes the source as GGUF and returns the NumPy reference's logits for every position.
std::vector<float> numpy_logits(const WeightSource& src, const std::vector<int32_t>& tokens, int32_t n_vocab) {
  const std::string dir = test::temp_dir();
  GgufWriter writer;
  writer.metadata() = src.metadata();
  for (const NamedTensor& t : src.tensors()) writer.add_tensor(t.name, t.view);
  const Status st = writer.write(dir + "/model.gguf");
  EXPECT_TRUE(st.ok()) << st.message();
  std::string ids;
  for (int32_t t : tokens) {
    if (!ids.empty()) ids += ',';
    ids += std::to_string(t);
  }
  const test::CmdResult r = test::run_command(test::numpy_python() + " " + test::source_dir() +
                                              "/tests/model/numpy_ref.py " + dir + "/model.gguf " + dir +
                                              "/logits.bin " + ids);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string bytes = test::read_file(dir + "/logits.bin");
  EXPECT_EQ(bytes.size(), tokens.size() * n_vocab * sizeof(float));
  std::vector<float> logits(bytes.size() / sizeof(float));
  std::memcpy(logits.data(), bytes.data(), logits.size() * sizeof(float));
  return logits;
}

// The block table used for most tests: 16-slot blocks, not contiguous, 40 tokens cross two
// block boundaries.
const std::vector<int32_t> kTable = {7, 2, 5};
constexpr int32_t kBlockSize = 16;
constexpr int32_t kBlocks = 8;
constexpr int kSeqLen = 40;

// ---- against the NumPy reference -----------------------------------------------------------

struct Variant {
  const char* name;
  ModelConfig cfg;
  bool untied;
};
void PrintTo(const Variant& v, std::ostream* os) { *os << v.name; }

std::vector<Variant> variants() {
  ModelConfig mqa = llama_config(/*n_head_kv=*/1);
  mqa.n_rot = 4;  // partial rotary: only the first 4 of 8 dims per head
  mqa.rope_theta = 500.0f;
  return {{"gpt2", gpt2_config(), false},
          {"gpt2_untied", gpt2_config(), true},
          {"llama_gqa", llama_config(2), false},
          {"llama_mqa_partial_rope", mqa, false},
          {"llama_untied", llama_config(2), true}};
}

class ForwardNumpy : public ::testing::TestWithParam<Variant> {};

// All-position logits of the variant's model with a KV cache of `kv_type`, and the NumPy reference's;
// the largest row error between them (see max_row_error).
double error_against_numpy(const Variant& v, DType kv_type) {
  auto src = make_source(v.cfg, v.untied);
  auto model = build_model(src);
  EXPECT_NE(model, nullptr);
  if (model == nullptr) return 1e30;
  EXPECT_EQ(model->config().tied_head, !v.untied);
  const auto tokens = random_tokens(kSeqLen, v.cfg.n_vocab, 11);
  ThreadPool pool(2);
  KvStore kv = make_kv(*model, kBlocks, kBlockSize, kv_type);
  const auto got = run_one(*model, tokens, 0, kTable, LogitsMode::kAll, kv, pool);
  const auto want = numpy_logits(*src, tokens, v.cfg.n_vocab);
  return max_row_error(got, want, v.cfg.n_vocab);
}

TEST_P(ForwardNumpy, AllPositionsMatchReference) {
  LLMOPT_REQUIRE_NUMPY();
  // Tolerance: 1e-4 of each row's largest |logit| (or absolute 1e-4 below 1); see max_row_error.
  EXPECT_LE(error_against_numpy(GetParam(), DType::kF32), 1e-4);
}

// The default f16 cache: K and V rounded to half precision (relative error <= 2^-11 each) move the
// logits of these random-weight models by at most about 1.4e-3 of the largest |logit| (measured);
// 5e-3 bounds it, while an f32 cache stays within 1e-4 above.
TEST_P(ForwardNumpy, F16CacheStaysCloseToReference) {
  LLMOPT_REQUIRE_NUMPY();
  const double err = error_against_numpy(GetParam(), DType::kF16);
  EXPECT_LE(err, 5e-3);
  EXPECT_GT(err, 0.0);  // the cache really is f16
}

INSTANTIATE_TEST_SUITE_P(, ForwardNumpy, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return std::string(info.param.name); });

// The comparison can fail: a small change to one weight after writing the file is detected.
TEST(ForwardNumpyCheck, PerturbedWeightIsDetected) {
  LLMOPT_REQUIRE_NUMPY();
  for (const ModelConfig& cfg : {gpt2_config(), llama_config(2)}) {
    auto src = make_source(cfg, false);
    const auto tokens = random_tokens(12, cfg.n_vocab, 3);
    const auto want = numpy_logits(*src, tokens, cfg.n_vocab);
    auto* w = const_cast<float*>(src->find("blk.1.ffn_down.weight")->f32());
    w[5] += 0.1f;
    auto model = build_model(src);
    ASSERT_NE(model, nullptr);
    ThreadPool pool(2);
    KvStore kv = make_kv(*model, kBlocks, kBlockSize);
    const auto got = run_one(*model, tokens, 0, kTable, LogitsMode::kAll, kv, pool);
    EXPECT_GT(max_row_error(got, want, cfg.n_vocab), 1e-3) << arch_name(cfg.arch);
  }
}

// ---- KV cache: incremental equals whole-sequence ----------------------------------------------

class ForwardCache : public ::testing::TestWithParam<Variant> {};

TEST_P(ForwardCache, TokenByTokenAndChunksMatchWholeSequence) {
  const Variant& v = GetParam();
  auto model = build_model(make_source(v.cfg, v.untied));
  ASSERT_NE(model, nullptr);
  const int64_t n_vocab = v.cfg.n_vocab;
  const auto tokens = random_tokens(kSeqLen, v.cfg.n_vocab, 5);
  const std::span<const int32_t> all(tokens);
  ThreadPool pool(2);

  KvStore kv_full = make_kv(*model, kBlocks, kBlockSize);
  const auto full = run_one(*model, all, 0, kTable, LogitsMode::kAll, kv_full, pool);  // [n, n_vocab]
  ASSERT_EQ(full.size(), tokens.size() * n_vocab);

  KvStore kv_step = make_kv(*model, kBlocks, kBlockSize);
  for (int32_t p = 0; p < kSeqLen; ++p) {
    const auto row = run_one(*model, all.subspan(p, 1), p, kTable, LogitsMode::kLast, kv_step, pool);
    ASSERT_EQ(row.size(), static_cast<size_t>(n_vocab));
    EXPECT_LE(max_row_error(row.data(), full.data() + p * n_vocab, 1, n_vocab), 1e-5) << "position " << p;
  }

  KvStore kv_chunk = make_kv(*model, kBlocks, kBlockSize);
  for (int32_t p = 0; p < kSeqLen; p += 5) {
    const auto rows = run_one(*model, all.subspan(p, 5), p, kTable, LogitsMode::kAll, kv_chunk, pool);
    ASSERT_EQ(rows.size(), static_cast<size_t>(5 * n_vocab));
    EXPECT_LE(max_row_error(rows.data(), full.data() + p * n_vocab, 5, n_vocab), 1e-5) << "chunk at " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(, ForwardCache, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- batches of sequences ----------------------------------------------------------------------

class ForwardBatch : public ::testing::TestWithParam<Variant> {};

// A continuous-batching step: A continues a prefill (5 tokens after 4 cached), B decodes one token
// after 6 cached, D is a prompt whose logits nobody wants, C is a fresh 9-token prompt. Tables are
// interleaved over one store of 4-slot blocks.
TEST_P(ForwardBatch, MixedBatchMatchesEachAlone) {
  const Variant& v = GetParam();
  auto model = build_model(make_source(v.cfg, v.untied));
  ASSERT_NE(model, nullptr);
  const int64_t n_vocab = v.cfg.n_vocab;
  constexpr int32_t kBs = 4;

  struct Seq {
    std::vector<int32_t> tokens;
    int32_t n_prefix;  // tokens already in the cache before the batch
    std::vector<int32_t> table;
    LogitsMode mode;
  };
  const std::vector<Seq> seqs = {
      {random_tokens(9, v.cfg.n_vocab, 21), 4, {3, 9, 0}, LogitsMode::kAll},
      {random_tokens(7, v.cfg.n_vocab, 22), 6, {10, 14}, LogitsMode::kLast},
      {random_tokens(3, v.cfg.n_vocab, 23), 0, {15}, LogitsMode::kNone},
      {random_tokens(9, v.cfg.n_vocab, 24), 0, {12, 1, 6}, LogitsMode::kLast},
  };
  ThreadPool pool(2);

  // Batched: first the cached prefixes (one call), then the step.
  KvStore kv = make_kv(*model, 16, kBs);
  std::vector<SeqInput> prefix, step;
  for (const Seq& s : seqs) {
    const std::span<const int32_t> t(s.tokens);
    if (s.n_prefix > 0) prefix.push_back({t.first(s.n_prefix), 0, s.table, LogitsMode::kNone});
    step.push_back({t.subspan(s.n_prefix), s.n_prefix, s.table, s.mode});
  }
  ForwardOutput out;
  model->forward(prefix, kv, out, pool);
  EXPECT_TRUE(out.logits.empty());
  model->forward(step, kv, out, pool);
  ASSERT_EQ(out.row_offset, (std::vector<int64_t>{0, 5, 6, 6}));
  ASSERT_EQ(out.logits.size(), static_cast<size_t>(7 * n_vocab));

  // Alone: each sequence in its own store, whole sequence at once.
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Seq& s = seqs[i];
    if (s.mode == LogitsMode::kNone) continue;
    KvStore kv_alone = make_kv(*model, 16, kBs);
    const auto alone = run_one(*model, s.tokens, 0, s.table, LogitsMode::kAll, kv_alone, pool);
    const int64_t n_rows = s.mode == LogitsMode::kAll ? static_cast<int64_t>(s.tokens.size()) - s.n_prefix : 1;
    const int64_t first = static_cast<int64_t>(s.tokens.size()) - n_rows;
    EXPECT_LE(max_row_error(out.logits.data() + out.row_offset[i] * n_vocab, alone.data() + first * n_vocab,
                            n_rows, n_vocab),
              1e-6)
        << "sequence " << i;
  }
}

// The thread count changes how (token, head) work is dealt out, never the result.
TEST_P(ForwardBatch, ThreadCountDoesNotChangeResult) {
  const Variant& v = GetParam();
  auto model = build_model(make_source(v.cfg, v.untied));
  ASSERT_NE(model, nullptr);
  const auto tokens = random_tokens(kSeqLen, v.cfg.n_vocab, 9);
  std::vector<float> ref;
  for (int n_threads : {1, 2, 3}) {
    ThreadPool pool(n_threads);
    KvStore kv = make_kv(*model, kBlocks, kBlockSize);
    const auto got = run_one(*model, tokens, 0, kTable, LogitsMode::kAll, kv, pool);
    if (ref.empty()) {
      ref = got;
    } else {
      EXPECT_LE(max_row_error(got, ref, v.cfg.n_vocab), 1e-6) << n_threads << " threads";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(, ForwardBatch, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- paged KV layout ---------------------------------------------------------------------------

class ForwardPaged : public ::testing::TestWithParam<Variant> {};

// Scattered block tables with several block sizes give the result of one contiguous block, and
// attention never reads slots outside the sequence (the rest of the store is poisoned with NaN).
TEST_P(ForwardPaged, BlockLayoutDoesNotChangeResult) {
  const Variant& v = GetParam();
  auto model = build_model(make_source(v.cfg, v.untied));
  ASSERT_NE(model, nullptr);
  const auto tokens = random_tokens(kSeqLen, v.cfg.n_vocab, 13);
  ThreadPool pool(2);

  KvStore kv_one = make_kv(*model, 1, 64);
  const std::vector<int32_t> one = {0};
  const auto want = run_one(*model, tokens, 0, one, LogitsMode::kAll, kv_one, pool);

  struct Layout {
    int32_t block_size;
    std::vector<int32_t> table;
  };
  const std::vector<Layout> layouts = {
      {16, {7, 2, 5}},
      {32, {3, 1}},
      {3, {13, 0, 8, 2, 11, 5, 1, 9, 14, 3, 7, 12, 4, 6}},
      {1, {}},
  };
  for (Layout l : layouts) {
    if (l.table.empty()) {  // one slot per block, in reverse order
      for (int32_t b = kSeqLen - 1; b >= 0; --b) l.table.push_back(b);
    }
    const int32_t n_blocks = *std::max_element(l.table.begin(), l.table.end()) + 2;
    KvStore kv = make_kv(*model, n_blocks, l.block_size);
    for (int32_t il = 0; il < kv.n_layer(); ++il) {
      for (int32_t b = 0; b < n_blocks; ++b) {
        // All-ones bits: NaN in f32 and in f16.
        std::fill_n(kv.k(il, b, 0), l.block_size * kv.kv_dim() * kv.elem_bytes(), uint8_t{0xFF});
        std::fill_n(kv.v(il, b, 0), l.block_size * kv.kv_dim() * kv.elem_bytes(), uint8_t{0xFF});
      }
    }
    const auto got = run_one(*model, tokens, 0, l.table, LogitsMode::kAll, kv, pool);
    // The online softmax updates once per kAttnChunk positions whatever the block size (chunks that
    // span blocks are gathered): the same operations on the same values, so the same bits.
    EXPECT_EQ(got, want) << "block size " << l.block_size;
  }
}

INSTANTIATE_TEST_SUITE_P(, ForwardPaged, ::testing::ValuesIn(variants()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- config and binding ------------------------------------------------------------------------

// A copy of `src` (views shared, `src` kept alive) without the tensor named `skip`.
std::shared_ptr<MemoryWeightSource> copy_without(std::shared_ptr<MemoryWeightSource> src, const std::string& skip) {
  auto dst = std::make_shared<MemoryWeightSource>("copy");
  dst->mutable_metadata() = src->metadata();
  for (const NamedTensor& t : src->tensors()) {
    if (t.name != skip) dst->add_tensor(t.name, t.view);
  }
  dst->keep_alive(src);
  return dst;
}

std::string bind_error(const WeightSource& src) {
  Result<ModelConfig> cfg = config_from_metadata(src.metadata());
  if (!cfg.ok()) return cfg.status().message();
  Result<Weights> w = bind_weights(src, *cfg);
  return w.ok() ? std::string() : w.status().message();
}

TEST(ForwardConfig, RoundTripsThroughMetadata) {
  for (const ModelConfig& c : {gpt2_config(), llama_config(1)}) {
    Metadata md;
    config_to_metadata(c, md);
    Result<ModelConfig> back = config_from_metadata(md);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->arch, c.arch);
    EXPECT_EQ(back->n_vocab, c.n_vocab);
    EXPECT_EQ(back->n_ctx_train, c.n_ctx_train);
    EXPECT_EQ(back->n_embd, c.n_embd);
    EXPECT_EQ(back->n_layer, c.n_layer);
    EXPECT_EQ(back->n_head, c.n_head);
    EXPECT_EQ(back->n_head_kv, c.n_head_kv);
    EXPECT_EQ(back->n_ff, c.n_ff);
    EXPECT_EQ(back->head_dim, c.head_dim);
    EXPECT_EQ(back->norm_eps, c.norm_eps);
    if (c.arch == Arch::kLlama) {
      EXPECT_EQ(back->n_rot, c.n_rot);
      EXPECT_EQ(back->rope_theta, c.rope_theta);
      EXPECT_EQ(back->rope_layout, kernels::RopeLayout::kAdjacent);
    }
  }
}

TEST(ForwardConfig, DefaultsAndErrors) {
  Metadata md;
  config_to_metadata(llama_config(2), md);
  md.erase("llama.attention.head_count_kv");
  md.erase("llama.rope.freq_base");
  md.erase("llama.rope.dimension_count");
  md.erase("llama.vocab_size");
  Result<ModelConfig> c = config_from_metadata(md);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->n_head_kv, 8);
  EXPECT_EQ(c->rope_theta, 10000.0f);
  EXPECT_EQ(c->n_rot, 8);
  EXPECT_EQ(c->n_vocab, 0);

  auto expect_error = [](Metadata m, const std::string& needle) {
    Result<ModelConfig> r = config_from_metadata(m);
    ASSERT_FALSE(r.ok()) << "expected an error mentioning " << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  Metadata m = md;
  m.set("general.architecture", MetaValue::from_string("mamba"));
  expect_error(m, "unknown architecture 'mamba'");
  m = md;
  m.erase("llama.block_count");
  expect_error(m, "llama.block_count");
  m = md;
  m.set("llama.attention.head_count", MetaValue::from_u32(7));
  expect_error(m, "llama.attention.head_count");
  m = md;
  m.set("llama.attention.head_count_kv", MetaValue::from_u32(3));
  expect_error(m, "llama.attention.head_count_kv");
  m = md;
  m.set("llama.embedding_length", MetaValue::from_u32(0));
  expect_error(m, "llama.embedding_length");
  m = md;
  m.set("llama.rope.dimension_count", MetaValue::from_u32(5));
  expect_error(m, "llama.rope.dimension_count");
  m = md;
  m.erase("llama.attention.layer_norm_rms_epsilon");
  expect_error(m, "llama.attention.layer_norm_rms_epsilon");
}

TEST(ForwardBind, VocabTiedHeadAndWeightBytes) {
  auto src = make_source(llama_config(2), /*untied=*/false);
  src->mutable_metadata().erase("llama.vocab_size");
  Result<ModelConfig> cfg = config_from_metadata(src->metadata());
  ASSERT_TRUE(cfg.ok());
  Result<Weights> w = bind_weights(*src, *cfg);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(cfg->n_vocab, 101);
  EXPECT_TRUE(cfg->tied_head);
  EXPECT_EQ(w->output.data, w->tok_embd.data);
  Model m(*cfg, std::move(*w), nullptr, src);
  size_t total = 0;
  for (const NamedTensor& t : src->tensors()) total += t.view.nbytes;
  EXPECT_EQ(m.weight_bytes(), total);

  auto untied = make_source(gpt2_config(), /*untied=*/true);
  auto model = build_model(untied);
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(model->config().tied_head);
  total = 0;
  for (const NamedTensor& t : untied->tensors()) total += t.view.nbytes;
  EXPECT_EQ(model->weight_bytes(), total);
}

TEST(ForwardBind, ErrorsNameTheTensor) {
  auto good = make_source(llama_config(2), false);
  EXPECT_EQ(bind_error(*good), "");

  auto missing = copy_without(good, "blk.1.ffn_gate.weight");
  EXPECT_EQ(bind_error(*missing), "missing tensor 'blk.1.ffn_gate.weight'");

  auto bad_shape = copy_without(good, "blk.0.attn_q.weight");
  bad_shape->add_owned_tensor("blk.0.attn_q.weight", DType::kF32, {64, 32}, 64 * 32 * 4);
  EXPECT_EQ(bind_error(*bad_shape), "tensor 'blk.0.attn_q.weight' has shape [64, 32], expected [64, 64]");

  auto bad_type = copy_without(good, "blk.0.attn_k.weight");
  bad_type->add_owned_tensor("blk.0.attn_k.weight", DType::kQ2_K, {16, 64}, 1024);
  EXPECT_EQ(bind_error(*bad_type), "tensor 'blk.0.attn_k.weight' has type q2_K, which llmopt cannot compute with");

  auto f16_norm = copy_without(good, "blk.1.ffn_norm.weight");
  f16_norm->add_owned_tensor("blk.1.ffn_norm.weight", DType::kF16, {64}, 128);
  EXPECT_NE(bind_error(*f16_norm).find("tensor 'blk.1.ffn_norm.weight' has type f16"), std::string::npos);

  auto short_bytes = copy_without(good, "blk.0.ffn_up.weight");
  short_bytes->add_owned_tensor("blk.0.ffn_up.weight", DType::kF32, {96, 64}, 100);
  EXPECT_NE(bind_error(*short_bytes).find("blk.0.ffn_up.weight"), std::string::npos);

  auto gpt2 = copy_without(make_source(gpt2_config(), false), "blk.1.attn_qkv.bias");
  EXPECT_EQ(bind_error(*gpt2), "missing tensor 'blk.1.attn_qkv.bias'");
}

}  // namespace
}  // namespace llmopt
