// `llmopt quantize --method rtn|gptq|awq`: on TinyStories-656K (first half of the TinyStories text for
// calibration, second half for evaluation) GPTQ and AWQ beat RTN in perplexity and in KL divergence
// from the F32 model; the files load in llmopt (and in llama.cpp when a build is present); per-channel,
// g128 and asymmetric variants run; bad inputs are one error line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <map>

#include "kernels/kernels.h"
#include "model/loader.h"
#include "runtime/eval.h"
#include "cli/quantize_test_util.h"
#include "model/loader_test_util.h"
#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::bin;
using test::expect_one_line_error;
using test::q;
using test::types_of;

using test::run_command;

const test::CalibTexts& texts() { return test::calib_texts(); }

std::string quantize(const std::string& dir, const std::string& name, const std::string& flags) {
  const std::string out = dir + "/" + name + ".gguf";
  auto r = run_command(bin() + " quantize " + q(test::tinystories_dir()) + " " + q(out) + " " + flags + " --calib " +
                       q(texts().calib_path) + " -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("bits per weight: 32.00 -> "), std::string::npos) << r.err;
  return out;
}

using test::Measured;
std::vector<Measured> evaluate(const std::vector<std::string>& paths, int32_t n_chunks = 20) {
  return test::evaluate_on_heldout(paths, n_chunks);
}

TEST(QuantizeMethodTest, GptqAndAwqBeatRtnAt4BitG32) {
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesModel);
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string dir = test::temp_dir();
  const std::string rtn = quantize(dir, "rtn-g32", "--method rtn --bits 4 --group-size 32");
  const std::string gptq = quantize(dir, "gptq-g32", "--method gptq --bits 4 --group-size 32");
  const std::string awq = quantize(dir, "awq-g32", "--method awq --bits 4 --group-size 32");
  const std::string per_layer = quantize(dir, "gptq-g32-per-layer", "--method gptq --bits 4 --group-size 32 --gptq-per-layer");
  for (const std::string& p : {rtn, gptq, awq, per_layer}) {
    for (const auto& [name, type] : types_of(p)) {
      if (name.find("blk.") == 0 && name.find("norm") == std::string::npos) {
        EXPECT_EQ(type, DType::kQ4_0) << p << " " << name;
      }
    }
  }
  // Perplexity on the whole held-out half: on 20 chunks a 4-bit file's perplexity moves by more than the
  // methods' differences (docs/BENCHMARKS.md, quality report).
  auto m = evaluate({test::tinystories_dir(), rtn, gptq, awq, per_layer}, -1);
  ASSERT_EQ(m.size(), 5u);
  // The default (per linear group, the unquantized model's outputs as the target) against the paper's
  // per-layer setup: measured 0.0277 against 0.0347 (32 windows).
  EXPECT_LT(m[2].kld, m[4].kld * 0.9) << "GPTQ per group with the asymmetric target vs per layer";
  EXPECT_LT(m[4].kld, m[1].kld) << "GPTQ per layer vs RTN KL divergence";
  EXPECT_LT(m[2].ppl, m[1].ppl) << "GPTQ vs RTN perplexity";
  EXPECT_LT(m[2].kld, m[1].kld) << "GPTQ vs RTN KL divergence";
  EXPECT_LT(m[3].kld, m[1].kld) << "AWQ vs RTN KL divergence";
  // AWQ's perplexity is close to RTN's on this 2-layer model (measured 42.74 vs 42.81, KLD 0.0451 vs
  // 0.0539): KL divergence separates them, perplexity only within a margin.
  EXPECT_LT(m[3].ppl, m[1].ppl * 1.02) << "AWQ vs RTN perplexity";
  EXPECT_GT(m[1].ppl, m[0].ppl * 0.9);  // sanity: quantized is not far better than F32
  EXPECT_LT(m[1].ppl, m[0].ppl * 3.0);

  // llama.cpp reads the same file, when a build is around.
  const std::string simple = test::source_dir() + "/.lcpp/b/bin/llama-simple";
  if (std::filesystem::exists(simple)) {
    for (const std::string& p : {gptq, awq}) {
      auto r = run_command(q(simple) + " -m " + q(p) + " -n 8 'Once upon a time' 2>&1");
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
  }
}

TEST(QuantizeMethodTest, ChannelG128AndAsymmetricVariantsRun) {
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesModel);
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string dir = test::temp_dir();
  std::vector<std::string> paths = {test::tinystories_dir()};
  for (const char* method : {"rtn", "gptq", "awq"}) {
    paths.push_back(quantize(dir, std::string(method) + "-g128", std::string("--method ") + method + " --group-size 128"));
    paths.push_back(quantize(dir, std::string(method) + "-channel", std::string("--method ") + method +
                                                                        " --granularity channel"));
  }
  paths.push_back(quantize(dir, "gptq-g32-asym", "--method gptq --asym --calib-samples 8"));
  paths.push_back(quantize(dir, "gptq-q8-channel", "--method gptq --bits 8 --granularity channel --calib-samples 8"));
  auto types = types_of(paths.back());
  EXPECT_EQ(types["blk.0.attn_q.weight"], DType::kQ8_0);
  EXPECT_EQ(types_of(paths[paths.size() - 2])["blk.1.ffn_down.weight"], DType::kQ4_1);
  auto m = evaluate(paths);
  ASSERT_EQ(m.size(), paths.size());
  // GPTQ beats RTN at g128 and per channel too.
  EXPECT_LT(m[3].kld, m[1].kld);
  EXPECT_LT(m[4].kld, m[2].kld);
  // So does AWQ (its 1/s folded into attn_norm, ffn_norm and ffn_up's rows).
  EXPECT_LT(m[5].kld, m[1].kld);
  EXPECT_LT(m[6].kld, m[2].kld);
  EXPECT_LT(m.back().kld, m[1].kld);  // 8-bit is closer than any 4-bit
}

TEST(QuantizeMethodTest, BadInputsAreOneErrorLine) {
  const std::string dir = test::temp_dir();
  // llama-tiny: rows of 64 and 160 elements.
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset llama-tiny --outtype f32 -o " + q(tiny)).exit_code, 0);
  const std::string tiny_q8 = dir + "/tiny-q8.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset llama-tiny --outtype q8_0 -o " + q(tiny_q8)).exit_code, 0);
  const std::string out = q(dir + "/o.gguf");
  const std::string base = bin() + " quantize " + q(tiny) + " " + out + " ";
  expect_one_line_error(run_command(base + "--method gptq"), {"--method gptq needs calibration text: --calib"});
  expect_one_line_error(run_command(base + "--method gptq --calib " + q(dir + "/missing.txt")), {"missing.txt"});
  test::write_file(dir + "/short.txt", "Once upon a time");
  expect_one_line_error(run_command(base + "--method awq --calib " + q(dir + "/short.txt")),
                        {"calibration text has ", " tokens, need at least 128"});
  expect_one_line_error(run_command(base + "--method rtn --group-size 128"),
                        {"--group-size 128 does not divide the rows of 64 elements"});
  expect_one_line_error(run_command(base + "--method rtn --bits 3"), {"--bits 3 is not supported"});
  expect_one_line_error(run_command(base + "--method rtn --bits 8 --asym"),
                        {"8-bit asymmetric has no GGUF block; use --sym"});
  expect_one_line_error(run_command(base + "--method rtn --group-size 48"), {"--group-size 48"});
  expect_one_line_error(run_command(base + "--method rtn --granularity row"), {"unknown granularity 'row'"});
  expect_one_line_error(run_command(base + "--method xyz"), {"unknown method 'xyz'"});
  expect_one_line_error(run_command(base + "--method rtn --type q4_0"), {"either --type or --method"});
  expect_one_line_error(run_command(base + "--method rtn --pure"), {"--pure applies to --type"});
  expect_one_line_error(run_command(base + "--method rtn --gptq-per-layer"),
                        {"--gptq-per-layer applies to weight-only --method gptq only"});
  expect_one_line_error(run_command(base + "--method gptq --awq-objective layer"),
                        {"--awq-objective applies to --method awq only"});
  expect_one_line_error(run_command(base + "--method awq --awq-objective model"),
                        {"unknown --awq-objective 'model' (use block or layer)"});
  expect_one_line_error(run_command(base), {"--type or --method"});
  expect_one_line_error(run_command(bin() + " quantize " + q(tiny_q8) + " " + out + " --method rtn"),
                        {"is already quantized (q8_0)"});
}

TEST(QuantizeMethodTest, RtnOnLlamaTinyRunsAndWritesQ4Blocks) {
  const std::string dir = test::temp_dir();
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset llama-tiny --outtype f32 -o " + q(tiny)).exit_code, 0);
  auto r = run_command(bin() + " quantize " + q(tiny) + " " + q(dir + "/o.gguf") +
                       " --method rtn --granularity channel --keep 'attn_k\\.'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[layer 1/2] blk.0.attn_q.weight q4_0 rtn channel"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bits per weight: 32.00 -> "), std::string::npos) << r.err;
  for (const auto& [name, type] : types_of(dir + "/o.gguf")) {
    DType want = DType::kQ4_0;
    if (name.find("norm") != std::string::npos || name == "token_embd.weight") want = DType::kF32;
    if (name.find("attn_k.") != std::string::npos) want = DType::kF16;
    EXPECT_EQ(type, want) << name;
  }
  auto src = open_model_source(dir + "/o.gguf");
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->metadata().get_int("general.file_type"), 2);
  auto g = run_command(bin() + " generate -m " + q(dir + "/o.gguf") + " -p 'ab' -n 4 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
}

TEST(QuantizeMethodTest, Gpt2FusedQkvAndLayerNormBiasFoldRun) {
  const std::string dir = test::temp_dir();
  const std::string g2 = dir + "/gpt2.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset gpt2-tiny --outtype f32 -o " + q(g2)).exit_code, 0);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + ". ";
  test::write_file(dir + "/calib.txt", text);
  for (const char* method : {"gptq", "awq", "awq --awq-objective layer"}) {
    const std::string out = dir + "/" + std::to_string(std::strlen(method)) + ".gguf";
    auto r = run_command(bin() + " quantize " + q(g2) + " " + q(out) + " --method " + method +
                         " --granularity channel --calib " + q(dir + "/calib.txt") +
                         " --calib-samples 4 --calib-seq-len 32");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string m = std::string(method).substr(0, 4) == "gptq" ? "gptq" : "awq";
    EXPECT_NE(r.err.find("blk.0.attn_qkv.weight q4_0 " + m), std::string::npos) << r.err;
    if (m == "awq") {
      // The default searches the fused QKV's and ffn_up's scales on the attention / MLP output.
      const bool layer = std::string(method).find("layer") != std::string::npos;
      EXPECT_EQ(r.err.find("blk.1.attn_qkv.weight q4_0 awq channel alpha") != std::string::npos, true) << r.err;
      EXPECT_EQ(r.err.find("(block output error") != std::string::npos, !layer) << r.err;
    }
    EXPECT_EQ(types_of(out)["blk.1.attn_qkv.weight"], DType::kQ4_0);
    auto g = run_command(bin() + " generate -m " + q(out) + " -p 'ab' -n 4 --temp 0");
    EXPECT_EQ(g.exit_code, 0) << g.err;
  }
}

}  // namespace
}  // namespace llmopt

namespace llmopt {
namespace {

// --compact: the same 4-bit asymmetric g128 values as Q4_1 blocks with repeated parameters, stored as
// the extension type q4_1_g128 (4.25 instead of 5.0 bits per weight): identical logits, smaller file.
TEST(QuantizeMethodTest, CompactG128HoldsTheSameValuesInFewerBytes) {
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesModel);
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string dir = test::temp_dir();
  const std::string bin = test::llmopt_binary();
  const std::string base = bin + " quantize '" + test::tinystories_dir() + "' ";
  const std::string calib = " --calib '" + test::calib_texts().calib_path + "' --calib-samples 8";
  for (const char* how : {"--method gptq --asym --group-size 128", "--method awq --asym --granularity channel"}) {
    SCOPED_TRACE(how);
    const std::string plain = dir + "/plain.gguf", compact = dir + "/compact.gguf";
    ASSERT_EQ(test::run_command(base + "'" + plain + "' " + how + calib).exit_code, 0);
    auto r = test::run_command(base + "'" + compact + "' " + how + " --compact" + calib);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto src = open_model_source(compact);
    ASSERT_TRUE(src.ok());
    EXPECT_EQ((*src)->find("blk.0.attn_q.weight")->type, DType::kQ4_1G128);
    EXPECT_LT(std::filesystem::file_size(compact), std::filesystem::file_size(plain));
    auto a = load_model(plain);
    auto b = load_model(compact);
    ASSERT_TRUE(a.ok() && b.ok());
    ThreadPool pool(2);
    const std::vector<int32_t> ids = (*a)->tokenizer().encode("Once upon a time there was a cat.", true);
    EXPECT_EQ(test::all_logits(**a, ids, pool), test::all_logits(**b, ids, pool));
  }
  // Only for 4-bit asymmetric groups of 128 or whole rows of a multiple of 128.
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(test::run_command(bin + " synth --preset llama-tiny --outtype f32 -o '" + tiny + "'").exit_code, 0);
  for (const char* bad : {"--method rtn --compact", "--method rtn --asym --compact",
                          "--method rtn --asym --group-size 32 --compact"}) {
    auto e = test::run_command(bin + " quantize '" + tiny + "' '" + dir + "/x.gguf' " + bad);
    EXPECT_EQ(e.exit_code, 1) << bad;
    EXPECT_NE(e.err.find("--compact writes 4-bit asymmetric groups of 128"), std::string::npos) << e.err;
  }
  auto e = test::run_command(bin + " quantize '" + tiny + "' '" + dir + "/x.gguf' --method rtn --asym --granularity channel --compact");
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("--compact needs rows that are whole groups of 128"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace llmopt

namespace llmopt {
namespace {

TEST(QuantizeMethodTest, EmbedTypeWritesTheTablesWithLlamaCppQuantizers) {
  const std::string dir = test::temp_dir();
  const std::string bin = test::llmopt_binary();
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(test::run_command(bin + " synth --preset llama-tiny --outtype f32 -o '" + tiny + "'").exit_code, 0);
  const std::string out = dir + "/e.gguf";
  auto r = test::run_command(bin + " quantize '" + tiny + "' '" + out + "' --method rtn --granularity channel --embed-type q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto src = open_model_source(out);
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->find("token_embd.weight")->type, DType::kQ8_0);
  EXPECT_EQ((*src)->find("blk.0.attn_q.weight")->type, DType::kQ4_0);
  // The values are llama.cpp's Q8_0 of the input's rows.
  auto in = open_model_source(tiny);
  ASSERT_TRUE(in.ok());
  const TensorView* te = (*in)->find("token_embd.weight");
  std::vector<uint8_t> want(*dtype_row_bytes(DType::kQ8_0, te->numel()));
  kernels::quantize_row(DType::kQ8_0, te->f32(), want.data(), te->numel());
  const TensorView* got = (*src)->find("token_embd.weight");
  ASSERT_EQ(got->nbytes, want.size());
  EXPECT_EQ(std::memcmp(got->data, want.data(), want.size()), 0);
  auto g = test::run_command(bin + " generate -m '" + out + "' -p 'ab' -n 4 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  auto e = test::run_command(bin + " quantize '" + tiny + "' '" + out + "' --method rtn --embed-type q9_9");
  EXPECT_EQ(e.exit_code, 1);
  EXPECT_NE(e.err.find("--embed-type 'q9_9' is not a type llmopt writes"), std::string::npos) << e.err;
}

}  // namespace
}  // namespace llmopt
