// run_bench() on tiny synthesized models: row layout, positive speeds, the JSON/CSV/markdown renderings,
// option validation, and the decode bytes-per-token model against a hand count. No timing assertions.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "model/loader.h"
#include "model/synth.h"
#include "runtime/bench.h"

namespace llmopt {
namespace {

std::unique_ptr<Model> tiny(const std::string& preset) {
  SynthOptions so;
  so.config = *find_synth_preset(preset);
  so.seed = 3;
  auto src = synth_model(so);
  EXPECT_TRUE(src.ok());
  if (!src.ok()) return nullptr;
  auto m = load_model_from_source(std::shared_ptr<const WeightSource>(std::move(src).value()));
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m).value() : nullptr;
}

BenchOptions small_options() {
  BenchOptions o;
  o.n_prompt = {8, 0, 16};
  o.n_gen = {4};
  o.threads = {1, 2};
  o.repetitions = 2;
  return o;
}

TEST(BenchTest, RowsPerTestAndThreadAllPositive) {
  auto model = tiny("gpt2-tiny");
  ASSERT_NE(model, nullptr);
  BenchOptions o = small_options();
  int progress_lines = 0;
  o.on_progress = [&](const std::string&) { ++progress_lines; };
  auto rep = run_bench(*model, o);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  ASSERT_EQ(rep->rows.size(), 3u * 2u);  // (pp8, pp16, tg4) x (1, 2 threads); -p 0 is skipped
  EXPECT_EQ(progress_lines, 6);
  const char* tests[] = {"pp8", "pp16", "tg4"};
  for (size_t i = 0; i < rep->rows.size(); ++i) {
    const BenchRow& r = rep->rows[i];
    EXPECT_EQ(r.test, tests[i % 3]);
    EXPECT_EQ(r.threads, i < 3 ? 1 : 2);
    ASSERT_EQ(r.tps.size(), 2u);
    for (double t : r.tps) EXPECT_GT(t, 0.0);
    EXPECT_GT(r.mean, 0.0);
    EXPECT_GE(r.stddev, 0.0);
    EXPECT_GT(r.median, 0.0);
    EXPECT_EQ(r.bytes_per_token > 0, r.n_gen > 0);
    EXPECT_EQ(r.limit_tps, 0.0);  // no roofline asked
  }
  EXPECT_GT(rep->params, 0u);
  EXPECT_EQ(rep->size_bytes, model->weight_bytes());
  EXPECT_GT(rep->peak_rss_bytes, 0u);
  EXPECT_FALSE(rep->backend.empty());
}

TEST(BenchTest, JsonParsesAndCarriesTheFields) {
  auto model = tiny("llama-tiny");
  ASSERT_NE(model, nullptr);
  BenchOptions o = small_options();
  o.threads = {2};
  o.roofline = true;
  o.roofline_buffer_bytes = size_t{8} << 20;
  o.roofline_passes = 2;
  auto rep = run_bench(*model, o);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  rep->file_bytes = 1234;
  const auto j = nlohmann::json::parse(format_bench(*rep, BenchFormat::kJson));
  EXPECT_EQ(j["file_bytes"], 1234);
  EXPECT_EQ(j["backend"], rep->backend);
  ASSERT_EQ(j["results"].size(), 3u);
  for (const auto& r : j["results"]) {
    EXPECT_EQ(r["threads"], 2);
    EXPECT_GT(r["tps_mean"].get<double>(), 0.0);
    EXPECT_GT(r["tps_median"].get<double>(), 0.0);
    EXPECT_EQ(r["tps_samples"].size(), 2u);
  }
  const auto& tg = j["results"][2];
  EXPECT_EQ(tg["test"], "tg4");
  EXPECT_GT(tg["limit_tps"].get<double>(), 0.0);
  // One paired value per repetition, each tokens/s x bytes/token over the probe's GB/s of that moment.
  ASSERT_EQ(tg["paired_pct_samples"].size(), 2u);
  EXPECT_GT(tg["pct_of_limit_paired"].get<double>(), 0.0);
  for (const auto& r : j["results"]) EXPECT_EQ(r.contains("paired_pct_samples"), r["test"] == "tg4");
  ASSERT_EQ(j["bandwidth"].size(), 1u);
  EXPECT_GT(j["bandwidth"][0]["best_gbs"].get<double>(), 0.0);
  EXPECT_EQ(j["bandwidth"][0]["buffer_bytes"], size_t{8} << 20);
  // Which read loop the probe kept (with or without software prefetch, whichever read faster here).
  ASSERT_TRUE(j["bandwidth"][0]["sw_prefetch"].is_boolean());

  const std::string csv = format_bench(*rep, BenchFormat::kCsv);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4);  // header + 3 rows
  const std::string md = format_bench(*rep, BenchFormat::kMarkdown);
  EXPECT_NE(md.find("| model"), std::string::npos);
  EXPECT_NE(md.find("pp16"), std::string::npos);
  EXPECT_NE(md.find("% of limit"), std::string::npos);
  EXPECT_NE(md.find("paired % of limit"), std::string::npos);
  EXPECT_NE(md.find(j["bandwidth"][0]["sw_prefetch"].get<bool>() ? "read loop with software prefetch"
                                                                  : "read loop without software prefetch"),
            std::string::npos);
  EXPECT_NE(csv.find("pct_of_limit_paired"), std::string::npos);
}

// Hand count for f32 gpt2-tiny: per layer LN (2E) + qkv (3E*E + 3E) + proj (E*E + E) + LN (2E)
// + fc (F*E + F) + proj (E*F + E); final LN 2E; head V*E; one pos_embd row E;
// one token_embd row E unless token_embd is the (tied) head.
TEST(BenchTest, BytesPerTokenMatchesHandCountGpt2) {
  auto model = tiny("gpt2-tiny");
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config();
  const double E = c.n_embd, F = c.n_ff, V = c.n_vocab, L = c.n_layer;
  const double per_layer = 2 * E + 3 * E * E + 3 * E + E * E + E + 2 * E + F * E + F + E * F + E;
  const double weights = 4.0 * (L * per_layer + 2 * E + V * E + E + (c.tied_head ? 0 : E));
  const DecodeBytes b = decode_bytes_per_token(*model, 10.0);
  EXPECT_DOUBLE_EQ(b.weight_bytes, weights);
  // The KV cache is f16 by default: 2 bytes per element.
  EXPECT_DOUBLE_EQ(b.kv_bytes, L * 2 * E * 2 * 10.0);
  EXPECT_DOUBLE_EQ(b.total(), weights + L * 2 * E * 2 * 10.0);
  EXPECT_DOUBLE_EQ(tg_mean_context(4), 3.5);  // steps at positions 1..4 attend over 2, 3, 4, 5
}

// llama-tiny (GQA): per layer norm E + q E*E + k, v KV*E + o E*E + norm E + gate, up, down 3*F*E; final
// norm E; head V*E; token_embd adds one row when the head is separate.
TEST(BenchTest, BytesPerTokenMatchesHandCountLlama) {
  auto model = tiny("llama-tiny");
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config();
  const double E = c.n_embd, F = c.n_ff, V = c.n_vocab, L = c.n_layer, KV = c.kv_dim();
  ASSERT_LT(KV, E);
  const double per_layer = E + E * E + 2 * KV * E + E * E + E + 3 * F * E;
  const double weights = 4.0 * (L * per_layer + E + V * E + (c.tied_head ? 0 : E));
  const DecodeBytes b = decode_bytes_per_token(*model, 3.5);
  EXPECT_DOUBLE_EQ(b.weight_bytes, weights);
  EXPECT_DOUBLE_EQ(b.kv_bytes, L * 2 * KV * 2 * 3.5);  // f16 cache
}

TEST(BenchTest, ValidationNamesTheFlag) {
  ModelConfig c = *find_synth_preset("gpt2-tiny");  // 128 positions
  BenchOptions o = small_options();
  EXPECT_TRUE(validate_bench_options(c, o).ok());
  auto msg = [&](BenchOptions x) { return validate_bench_options(c, x).message(); };
  BenchOptions x = o;
  x.n_prompt = {129};
  EXPECT_NE(msg(x).find("-p 129"), std::string::npos);
  x = o;
  x.n_gen = {128};  // needs 129 positions with the start token
  EXPECT_NE(msg(x).find("-n 128"), std::string::npos);
  x = o;
  x.repetitions = 0;
  EXPECT_NE(msg(x).find("-r"), std::string::npos);
  x = o;
  x.threads = {0};
  EXPECT_NE(msg(x).find("-t 0"), std::string::npos);
  x = o;
  x.n_prompt = {0};
  x.n_gen = {0};
  EXPECT_NE(msg(x).find("nothing to run"), std::string::npos);
}

TEST(BenchTest, SummarizeMeanStdMedian) {
  double mean, sd, med;
  summarize({1.0, 2.0, 3.0, 10.0}, mean, sd, med);
  EXPECT_DOUBLE_EQ(mean, 4.0);
  EXPECT_NEAR(sd, std::sqrt(((9.0 + 4.0 + 1.0 + 36.0) / 3.0)), 1e-12);
  EXPECT_DOUBLE_EQ(med, 2.5);
  summarize({5.0}, mean, sd, med);
  EXPECT_DOUBLE_EQ(sd, 0.0);
  EXPECT_DOUBLE_EQ(med, 5.0);
}

}  // namespace
}  // namespace llmopt
