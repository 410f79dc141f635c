// run_eval (llmopt eval's computation) and llama.cpp's Q4_K_M / Q5_K_M tensor-type rules:
//  - a model against itself: KL exactly 0, top-1 100 %, Δppl 0;
//  - KL divergence and top-1 agreement against an independent computation from Model::forward for
//    stories260K and its Q8_0 / Q4_0 conversions;
//  - TinyStories-656K: Q8_0 close to F32, Q4_0 further away;
//  - which type each tensor of a 12- and a 30-layer model gets under Q4_K_M / Q5_K_M, and a written
//    Q4_K_M file of a synthesized 12-layer model read back.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <tuple>
#include <utility>

#include "model/convert.h"
#include "model/loader.h"
#include "model/quant_mix.h"
#include "model/synth.h"
#include "runtime/eval.h"
#include "runtime/kv/block_pool.h"
#include "test_util.h"

namespace llmopt {
namespace {

const char* kStory260K = "models/stories260K/stories260K.gguf";
const char* kTiny656K = "models/tinystories-656k";
const char* kText = "text/tinystories-valid-first1000.txt";

std::unique_ptr<Model> load(const std::string& path) {
  auto m = load_model(path);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

// Converts `in` to a GGUF of `type` in a temp dir and returns its path.
std::string convert_to(const std::string& in, DType type, const std::string& name) {
  auto src = open_model_source(in);
  EXPECT_TRUE(src.ok()) << src.status().message();
  const std::string out = test::temp_dir() + "/" + name + ".gguf";
  ConvertOptions o;
  o.outtype = type;
  Status st = write_gguf_model(**src, out, o);
  EXPECT_TRUE(st.ok()) << st.message();
  return out;
}

std::string text_prefix(size_t bytes) {
  std::string t = test::read_file(test::data_path(kText));
  return t.substr(0, std::min(bytes, t.size()));
}

EvalOptions quick(int32_t n_ctx, int32_t chunks) {
  EvalOptions o;
  o.n_ctx = n_ctx;
  o.n_chunks = chunks;
  o.threads = 2;
  o.speed = false;
  return o;
}

TEST(EvalTest, ModelAgainstItselfHasZeroKld) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA(kText);
  auto m = load(test::data_path(kStory260K));
  ASSERT_NE(m, nullptr);
  auto rows = run_eval({{m.get(), "a"}, {m.get(), "b"}}, text_prefix(20000), quick(64, 3));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  ASSERT_EQ(rows->size(), 2u);
  for (const EvalRow& r : *rows) {
    EXPECT_EQ(r.kld, 0.0);
    EXPECT_EQ(r.same_top1_pct, 100.0);
    EXPECT_EQ(r.dppl_pct, 0.0);
    EXPECT_EQ(r.dppl_pct_stderr, 0.0);
    EXPECT_EQ(r.kld_stderr, 0.0);
    EXPECT_EQ(r.same_top1_stderr, 0.0);
    EXPECT_EQ(r.n_positions, 3 * (64 - 1 - 32));
    EXPECT_EQ(r.ppl.n_units, 3);
  }
  EXPECT_EQ((*rows)[0].ppl.ppl, (*rows)[1].ppl.ppl);
  // The same perplexity as `llmopt perplexity` computes.
  PerplexityOptions po;
  po.n_ctx = 64;
  po.n_chunks = 3;
  ThreadPool pool(2);
  auto ppl = perplexity(*m, text_prefix(20000), po, pool);
  ASSERT_TRUE(ppl.ok());
  EXPECT_EQ(ppl->ppl, (*rows)[0].ppl.ppl);
  EXPECT_EQ(ppl->n_scored, (*rows)[0].n_positions);
}

// KL and top-1 computed here straight from Model::forward, in double.
// The paired standard errors from the per-position values, two-pass.
struct Reference {
  double kld = 0.0;
  double top1_pct = 0.0;
  double dppl_pct = 0.0;         // 100 (exp(mean d) - 1), d = NLL_q - NLL_p per position
  double dppl_pct_stderr = 0.0;  // 100 exp(mean d) sd(d) / sqrt(n - 1)
  double kld_stderr = 0.0;
  double top1_stderr = 0.0;
};

// Mean and sd / sqrt(n - 1) (sd with divisor n) of v, in two passes.
std::pair<double, double> mean_and_stderr(const std::vector<double>& v) {
  double mean = 0.0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0.0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return {mean, std::sqrt(ss / static_cast<double>(v.size()) / static_cast<double>(v.size() - 1))};
}

std::vector<float> chunk_logits(const Model& m, const std::vector<int32_t>& chunk) {
  const ModelConfig& cfg = m.config();
  const int32_t n = static_cast<int32_t>(chunk.size());
  KvStore kv(cfg.n_layer, cfg.kv_dim(), blocks_for_tokens(n, 16), 16);
  BlockPool blocks(blocks_for_tokens(n, 16));
  SeqBlocks table(blocks, 16);
  EXPECT_TRUE(table.reserve(n));
  SeqInput in;
  in.tokens = chunk;
  in.block_table = table.table();
  in.logits = LogitsMode::kAll;
  ForwardOutput out;
  ThreadPool pool(1);
  m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  return out.logits;
}

Reference reference(const Model& p, const Model& q, const std::string& text, int32_t n_ctx, int32_t chunks) {
  const Tokenizer& tok = p.tokenizer();
  const bool bos = tok.add_bos_default() && tok.bos() >= 0;
  std::vector<int32_t> ids = tok.encode(text, bos);
  const int32_t nv = p.config().n_vocab;
  std::vector<double> kls, ds;
  int64_t same = 0;
  for (int32_t c = 0; c < chunks; ++c) {
    std::vector<int32_t> chunk(ids.begin() + c * n_ctx, ids.begin() + (c + 1) * n_ctx);
    if (bos) chunk[0] = tok.bos();
    const std::vector<float> lp = chunk_logits(p, chunk), lq = chunk_logits(q, chunk);
    for (int32_t j = n_ctx / 2; j < n_ctx - 1; ++j) {
      const float* a = lp.data() + static_cast<size_t>(j) * nv;
      const float* b = lq.data() + static_cast<size_t>(j) * nv;
      // log-softmax in double via log-sum-exp with the double maximum.
      double ma = -INFINITY, mb = -INFINITY;
      int32_t ia = 0, ib = 0;
      for (int32_t i = 0; i < nv; ++i) {
        if (a[i] > ma) ma = a[i], ia = i;
        if (b[i] > mb) mb = b[i], ib = i;
      }
      double sa = 0, sb = 0;
      for (int32_t i = 0; i < nv; ++i) {
        sa += std::exp(a[i] - ma);
        sb += std::exp(b[i] - mb);
      }
      const double za = ma + std::log(sa), zb = mb + std::log(sb);
      double kl = 0;
      for (int32_t i = 0; i < nv; ++i) {
        const double pa = std::exp(a[i] - za);
        kl += pa * ((a[i] - za) - (b[i] - zb));
      }
      kls.push_back(kl);
      same += ia == ib;
      const int32_t t = ids[static_cast<size_t>(c * n_ctx + j + 1)];
      ds.push_back((zb - b[t]) - (za - a[t]));
    }
  }
  Reference r;
  const double n = static_cast<double>(kls.size());
  std::tie(r.kld, r.kld_stderr) = mean_and_stderr(kls);
  r.top1_pct = 100.0 * static_cast<double>(same) / n;
  const double p1 = static_cast<double>(same) / n;
  r.top1_stderr = 100.0 * std::sqrt(p1 * (1.0 - p1) / (n - 1.0));
  const auto [md, sd] = mean_and_stderr(ds);
  r.dppl_pct = 100.0 * (std::exp(md) - 1.0);
  r.dppl_pct_stderr = 100.0 * std::exp(md) * sd;
  return r;
}

TEST(EvalTest, KldMatchesIndependentComputation) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA(kText);
  const std::string base_path = test::data_path(kStory260K);
  auto base = load(base_path);
  const std::string q8_path = convert_to(base_path, DType::kQ8_0, "s260k-q8_0");
  const std::string q4_path = convert_to(base_path, DType::kQ4_0, "s260k-q4_0");
  auto q8 = load(q8_path);
  auto q4 = load(q4_path);
  ASSERT_TRUE(base && q8 && q4);
  const std::string text = text_prefix(20000);
  auto rows = run_eval({{base.get(), base_path}, {q8.get(), q8_path}, {q4.get(), q4_path}}, text, quick(64, 4));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  const Reference r8 = reference(*base, *q8, text, 64, 4), r4 = reference(*base, *q4, text, 64, 4);
  EXPECT_GT(r8.kld, 0.0);
  EXPECT_GT(r4.kld, r8.kld);
  EXPECT_NEAR((*rows)[1].kld, r8.kld, 1e-9 * r8.kld);
  EXPECT_NEAR((*rows)[2].kld, r4.kld, 1e-9 * r4.kld);
  EXPECT_DOUBLE_EQ((*rows)[1].same_top1_pct, r8.top1_pct);
  EXPECT_DOUBLE_EQ((*rows)[2].same_top1_pct, r4.top1_pct);
  // Paired statistics against the base: Δppl from the per-position NLL differences is the ratio of
  // the perplexities, and the standard errors are those of the per-position values.
  for (const auto& [row, ref] : {std::pair{&(*rows)[1], &r8}, std::pair{&(*rows)[2], &r4}}) {
    EXPECT_NEAR(row->dppl_pct, ref->dppl_pct, 1e-6 * (1.0 + std::abs(ref->dppl_pct)));
    EXPECT_GT(ref->dppl_pct_stderr, 0.0);
    EXPECT_NEAR(row->dppl_pct_stderr, ref->dppl_pct_stderr, 1e-6 * ref->dppl_pct_stderr);
    EXPECT_NEAR(row->kld_stderr, ref->kld_stderr, 1e-6 * ref->kld_stderr);
    EXPECT_NEAR(row->same_top1_stderr, ref->top1_stderr, 1e-9);
  }
  // Q4_0 is further from the base than Q8_0: its per-position NLL differences spread more.
  EXPECT_GT(r4.dppl_pct_stderr, r8.dppl_pct_stderr);
  EXPECT_EQ((*rows)[0].dppl_pct_stderr, 0.0);
  EXPECT_EQ((*rows)[0].kld_stderr, 0.0);
  EXPECT_EQ((*rows)[0].kld, 0.0);
  // Q8_0 is 8.5 bits; ffn_down's rows of 172 do not fit a 32-block and stay f16, the norms f32.
  EXPECT_GT((*rows)[1].bpw, 8.5);
  EXPECT_LT((*rows)[1].bpw, 16.0);
  EXPECT_LT((*rows)[2].bpw, (*rows)[1].bpw);
  EXPECT_GT((*rows)[0].bpw, 31.9);
  EXPECT_GT((*rows)[1].ratio, 3.0);
}

TEST(EvalTest, DifferentVocabulariesAreRefused) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto a = load(test::data_path(kStory260K));
  SynthOptions so;
  so.config = *find_synth_preset("llama-tiny");
  so.config.n_vocab = 300;
  auto src = synth_model(so);
  ASSERT_TRUE(src.ok());
  auto b = load_model_from_source(std::shared_ptr<const WeightSource>(std::move(src).value()));
  ASSERT_TRUE(a && b.ok());
  ASSERT_NE(a->config().n_vocab, (*b)->config().n_vocab);
  auto rows = run_eval({{a.get(), "A"}, {b->get(), "B"}}, "hello world", quick(4, 1));
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.status().message().find("A has " + std::to_string(a->config().n_vocab)), std::string::npos)
      << rows.status().message();
  EXPECT_NE(rows.status().message().find("B has " + std::to_string((*b)->config().n_vocab)), std::string::npos);
}

TEST(EvalTest, TinyStories656KQ8IsCloseAndQ4IsFurther) {
  LLMOPT_REQUIRE_DATA(std::string(kTiny656K) + "/model.safetensors");
  LLMOPT_REQUIRE_DATA(kText);
  const std::string base_path = test::data_path(kTiny656K);
  auto base = load(base_path);
  auto q8 = load(convert_to(base_path, DType::kQ8_0, "656k-q8_0"));
  auto q4 = load(convert_to(base_path, DType::kQ4_0, "656k-q4_0"));
  ASSERT_TRUE(base && q8 && q4);
  auto rows = run_eval({{base.get(), "f32"}, {q8.get(), "q8"}, {q4.get(), "q4"}}, text_prefix(60000), quick(128, 8));
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  const EvalRow &r8 = (*rows)[1], &r4 = (*rows)[2];
  EXPECT_LT(r8.kld, 0.01);
  EXPECT_LT(std::abs(r8.dppl_pct), 1.0);
  EXPECT_GT(r8.same_top1_pct, 90.0);
  EXPECT_GT(r4.kld, r8.kld);
  EXPECT_GT(std::abs(r4.dppl_pct), std::abs(r8.dppl_pct));
  EXPECT_LT(r4.bpw, r8.bpw);
}

// ---- Q4_K_M / Q5_K_M tensor types ----

std::shared_ptr<const WeightSource> synth_llama(int32_t n_layer, int32_t n_embd, int32_t n_ff, bool tied) {
  SynthOptions so;
  so.config = *find_synth_preset("llama-tiny");
  so.config.n_layer = n_layer;
  so.config.n_embd = n_embd;
  so.config.n_ff = n_ff;
  so.config.head_dim = n_embd / so.config.n_head;
  so.config.tied_head = tied;
  auto src = synth_model(so);
  EXPECT_TRUE(src.ok()) << src.status().message();
  return std::shared_ptr<const WeightSource>(std::move(src).value());
}

std::set<int> more_bits_layers(QuantMix mix, const std::string& role, int32_t n_layer,
                               const QuantMixModelInfo& info) {
  std::set<int> s;
  for (int i = 0; i < n_layer; ++i) {
    auto t = quant_mix_tensor_type(mix, "blk." + std::to_string(i) + "." + role + ".weight", 256, info);
    EXPECT_TRUE(t.has_value());
    if (*t == DType::kQ6_K) {
      s.insert(i);
    } else {
      EXPECT_EQ(*t, quant_mix_base_type(mix)) << role << " " << i;
    }
  }
  return s;
}

TEST(QuantMixTest, UseMoreBitsLayersFor12And30Layers) {
  // use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2
  const std::set<int> l12 = {0, 3, 6, 9, 10, 11};
  const std::set<int> l30 = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29};
  for (QuantMix mix : {QuantMix::kQ4_K_M, QuantMix::kQ5_K_M}) {
    QuantMixModelInfo i12{12, 12, true}, i30{30, 30, true};
    EXPECT_EQ(more_bits_layers(mix, "attn_v", 12, i12), l12);
    EXPECT_EQ(more_bits_layers(mix, "ffn_down", 12, i12), l12);
    EXPECT_EQ(more_bits_layers(mix, "attn_v", 30, i30), l30);
    EXPECT_EQ(more_bits_layers(mix, "ffn_down", 30, i30), l30);
  }
}

TEST(QuantMixTest, TypePerTensorRole) {
  const QuantMixModelInfo untied{12, 12, true}, tied{12, 12, false};
  const auto M4 = QuantMix::kQ4_K_M, M5 = QuantMix::kQ5_K_M;
  for (const char* role : {"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"}) {
    const std::string name = std::string("blk.3.") + role + ".weight";
    EXPECT_EQ(quant_mix_tensor_type(M4, name, 256, untied), DType::kQ4_K) << name;
    EXPECT_EQ(quant_mix_tensor_type(M5, name, 256, untied), DType::kQ5_K) << name;
  }
  EXPECT_EQ(quant_mix_tensor_type(M4, "blk.1.attn_v.weight", 256, untied), DType::kQ4_K);
  EXPECT_EQ(quant_mix_tensor_type(M4, "output.weight", 256, untied), DType::kQ6_K);
  EXPECT_EQ(quant_mix_tensor_type(M5, "output.weight", 256, untied), DType::kQ6_K);
  EXPECT_EQ(quant_mix_tensor_type(M4, "output.weight", 128, untied), DType::kQ8_0);  // 128 % 256 != 0
  EXPECT_EQ(quant_mix_tensor_type(M4, "token_embd.weight", 256, untied), DType::kQ4_K);
  EXPECT_EQ(quant_mix_tensor_type(M5, "token_embd.weight", 256, untied), DType::kQ5_K);
  EXPECT_EQ(quant_mix_tensor_type(M4, "token_embd.weight", 256, tied), DType::kQ6_K);  // the tied head
  EXPECT_EQ(quant_mix_tensor_type(M4, "token_embd.weight", 64, tied), DType::kQ8_0);
  // GPT-2's fused QKV is attn_v-like (current llama.cpp): Q6_K in the use_more_bits layers.
  EXPECT_EQ(quant_mix_tensor_type(M4, "blk.0.attn_qkv.weight", 768, untied), DType::kQ6_K);
  EXPECT_EQ(quant_mix_tensor_type(M4, "blk.1.attn_qkv.weight", 768, untied), DType::kQ4_K);
  EXPECT_EQ(quant_mix_tensor_type(M5, "blk.1.attn_qkv.weight", 768, untied), DType::kQ5_K);
  EXPECT_EQ(quant_mix_tensor_type(M5, "blk.3.attn_qkv.weight", 768, untied), DType::kQ6_K);
  EXPECT_FALSE(quant_mix_tensor_type(M4, "blk.0.attn_qkv.bias", 768, untied).has_value());
  EXPECT_FALSE(quant_mix_tensor_type(M4, "token_types.weight", 256, untied).has_value());
  EXPECT_FALSE(quant_mix_tensor_type(M4, "position_embd.weight", 256, untied).has_value());
  EXPECT_FALSE(quant_mix_tensor_type(M4, "blk.0.attn_norm.weight", 256, untied).has_value());
  EXPECT_EQ(quant_mix_file_type(M4), 15u);
  EXPECT_EQ(quant_mix_file_type(M5), 17u);
}

TEST(QuantMixTest, ModelInfoCountsLayersAndHead) {
  auto untied = synth_llama(12, 64, 128, false);
  auto tied = synth_llama(3, 64, 128, true);
  const QuantMixModelInfo a = quant_mix_model_info(*untied), b = quant_mix_model_info(*tied);
  EXPECT_EQ(a.n_attn_v, 12);
  EXPECT_EQ(a.n_ffn_down, 12);
  EXPECT_TRUE(a.has_output);
  EXPECT_EQ(b.n_attn_v, 3);
  EXPECT_FALSE(b.has_output);
}

// A 12-layer model with 256-wide rows (so no K-quant falls back) written as F32, quantized by the
// CLI to Q4_K_M and read back: every tensor in the type of the rules, file type 15.
TEST(QuantMixTest, QuantizeCliWritesTheMixFor12Layers) {
  auto src = synth_llama(12, 256, 512, false);
  const std::string dir = test::temp_dir();
  ConvertOptions o;
  o.outtype = DType::kF32;
  ASSERT_TRUE(write_gguf_model(*src, dir + "/f32.gguf", o).ok());
  auto r = test::run_command(test::llmopt_binary() + " quantize '" + dir + "/f32.gguf' '" + dir +
                             "/q4km.gguf' --type q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = open_model_source(dir + "/q4km.gguf");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)->metadata().get_int("general.file_type"), 15);
  const std::set<int> more = {0, 3, 6, 9, 10, 11};
  int checked = 0;
  for (const NamedTensor& t : (*out)->tensors()) {
    DType want = DType::kF32;
    if (t.view.shape.size() >= 2) {
      want = DType::kQ4_K;
      if (t.name == "output.weight") want = DType::kQ6_K;
      for (const char* role : {"attn_v", "ffn_down"}) {
        for (int i : more) {
          if (t.name == "blk." + std::to_string(i) + "." + role + ".weight") want = DType::kQ6_K;
        }
      }
    }
    EXPECT_EQ(t.view.type, want) << t.name;
    ++checked;
    // Progress line per tensor, with the type.
    EXPECT_NE(r.err.find("] " + t.name + " " + dtype_name(want) + "\n"), std::string::npos) << t.name;
  }
  EXPECT_EQ(checked, 3 + 12 * 9);
}

// GPT-2, 12 layers, 256 wide, untied head, quantized to Q5_K_M by the CLI: attn_qkv follows the
// attn_v rule, position_embd keeps its f32, output.weight is Q6_K, token_embd Q5_K; file type 17.
TEST(QuantMixTest, QuantizeCliWritesQ5KMForGpt2) {
  SynthOptions so;
  so.config = *find_synth_preset("gpt2-tiny");
  so.config.n_layer = 12;
  so.config.n_embd = 256;
  so.config.n_ff = 1024;
  so.config.head_dim = 256 / so.config.n_head;
  so.config.tied_head = false;
  auto made = synth_model(so);
  ASSERT_TRUE(made.ok()) << made.status().message();
  const std::string dir = test::temp_dir();
  ConvertOptions o;
  o.outtype = DType::kF32;
  ASSERT_TRUE(write_gguf_model(**made, dir + "/f32.gguf", o).ok());
  auto r = test::run_command(test::llmopt_binary() + " quantize '" + dir + "/f32.gguf' '" + dir +
                             "/q5km.gguf' --type Q5_K_M -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto out = open_model_source(dir + "/q5km.gguf");
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)->metadata().get_int("general.file_type"), 17);
  const std::set<int> more = {0, 3, 6, 9, 10, 11};
  int n_qkv = 0;
  for (const NamedTensor& t : (*out)->tensors()) {
    DType want = DType::kF32;
    if (t.view.shape.size() >= 2 && t.name != "position_embd.weight") {
      want = DType::kQ5_K;
      if (t.name == "output.weight") want = DType::kQ6_K;
      for (const char* role : {"attn_qkv", "ffn_down"}) {
        for (int i : more) {
          if (t.name == "blk." + std::to_string(i) + "." + role + ".weight") want = DType::kQ6_K;
        }
      }
    }
    n_qkv += t.name.find("attn_qkv.weight") != std::string::npos;
    EXPECT_EQ(t.view.type, want) << t.name;
  }
  EXPECT_EQ(n_qkv, 12);
}

}  // namespace
}  // namespace llmopt
