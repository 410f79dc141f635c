// `llmopt quantize` to W8A8 (the extension type i8_ch: int8 weights with per-row scales, int8
// activations at run time): on TinyStories-656K, calibrated on the first half of the TinyStories text
// and evaluated on the second half,
//   - per-channel INT8 with per-token activations stays within 0.5% perplexity and 0.002 mean KL;
//   - SmoothQuant with static per-tensor activation scales more than halves the KL of plain static
//     W8A8, and with per-token scales meets the same bounds;
//   - SmoothQuant's smoothing alone (nothing rounded) leaves the logits unchanged to 1e-5;
//   - the files carry the i8_ch tensors (embeddings and head included) and their scales, generate
//     text, and bad flags or broken
//     companion tensors give one specific error;
//   - a rotation of 16 rows or more (stories260K's 43 x 43) loads: the loader regroups only "*.weight".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "formats/weight_source.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/loader_test_util.h"
#include "runtime/eval.h"
#include "cli/quantize_test_util.h"
#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::bin;
using test::q;

using test::run_command;

const test::CalibTexts& w8_texts() { return test::calib_texts(); }

std::string w8_quantize(const std::string& name, const std::string& flags) {
  const std::string out = test::temp_dir() + "/" + name + ".gguf";
  auto r = run_command(bin() + " quantize " + q(test::tinystories_dir()) + " " + q(out) + " " + flags + " --calib " +
                       q(w8_texts().calib_path) + " -t 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return out;
}

using test::Measured;
std::vector<Measured> w8_evaluate(const std::vector<std::string>& paths) { return test::evaluate_on_heldout(paths); }

TEST(QuantizeW8A8Test, QualityOnTinyStories) {
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesModel);
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string dyn = w8_quantize("w8a8-dynamic", "--method rtn --act dynamic");
  const std::string stat = w8_quantize("w8a8-static", "--method rtn --act static");
  const std::string sq = w8_quantize("sq-static", "--method smoothquant");
  const std::string sqd = w8_quantize("sq-dynamic", "--method smoothquant --act dynamic");
  const std::string sqr = w8_quantize("sq-rotate", "--method smoothquant --rotate");
  // The layout: i8_ch codes, f32 row scales, and the static activation scale only where static.
  auto src = open_model_source(sq);
  ASSERT_TRUE(src.ok());
  const TensorView* w = (*src)->find("blk.0.ffn_down.weight");
  const TensorView* s = (*src)->find("blk.0.ffn_down.weight.scale");
  ASSERT_TRUE(w && s);
  EXPECT_EQ(w->type, DType::kI8Ch);
  EXPECT_EQ(s->type, DType::kF32);
  EXPECT_EQ(s->numel(), w->rows());
  EXPECT_NE((*src)->find("blk.0.ffn_down.weight.act_scale"), nullptr);
  auto dsrc = open_model_source(dyn);
  ASSERT_TRUE(dsrc.ok());
  EXPECT_EQ((*dsrc)->find("blk.0.ffn_down.weight.act_scale"), nullptr);
  // The (tied) embeddings are int8 per row as well, and read back as rows by the model.
  const TensorView* te = (*dsrc)->find("token_embd.weight");
  ASSERT_NE(te, nullptr);
  EXPECT_EQ(te->type, DType::kI8Ch);
  EXPECT_NE((*dsrc)->find("token_embd.weight.scale"), nullptr);

  // --rotate: ffn_down's input at least (where the outliers are) carries its rotation.
  auto rsrc = open_model_source(sqr);
  ASSERT_TRUE(rsrc.ok());
  const TensorView* rot = (*rsrc)->find("blk.0.ffn_down.weight.rot");
  ASSERT_NE(rot, nullptr);
  EXPECT_EQ(rot->type, DType::kF32);
  EXPECT_EQ(rot->shape, (std::vector<int64_t>{3, 3}));  // rows of 384 = 128 x 3

  auto m = w8_evaluate({test::tinystories_dir(), dyn, stat, sq, sqd, sqr});
  ASSERT_EQ(m.size(), 6u);
  const double base = m[0].ppl;
  // Per-channel INT8 weights, per-token INT8 activations.
  EXPECT_LT(std::fabs(m[1].ppl / base - 1.0), 0.005);
  EXPECT_LT(m[1].kld, 0.002);
  // SmoothQuant: static per-tensor activation scales hurt plain W8A8; migrating the outliers into the
  // weights more than halves the KL (measured 0.0163 -> 0.0053) and lowers the perplexity.
  EXPECT_LT(m[3].kld, 0.5 * m[2].kld);
  EXPECT_LT(m[3].ppl, m[2].ppl);
  EXPECT_LT(std::fabs(m[4].ppl / base - 1.0), 0.005);
  EXPECT_LT(m[4].kld, 0.002);
  // Static scales with the rotation: within the bounds too (measured KL 0.0016, against 0.0058
  // without it).
  EXPECT_LT(std::fabs(m[5].ppl / base - 1.0), 0.005);
  EXPECT_LT(m[5].kld, 0.002);
  EXPECT_LT(m[5].kld, 0.5 * m[3].kld);

  auto g = run_command(bin() + " generate -m " + q(sq) + " -p 'Once upon a time' -n 8 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  EXPECT_GT(g.out.size(), 16u);
}

// stories260K's ffn_down rows of 172 = 4 x 43 take a 43 x 43 rotation: a matrix of 16 rows or more,
// which the loader must not regroup for the matrix kernels (it regroups the "*.weight" matrices only).
TEST(QuantizeW8A8Test, RotationsOf16RowsOrMoreLoad) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.gguf");
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string base = test::data_path("models/stories260K/stories260K.gguf");
  const std::string out = test::temp_dir() + "/s260k-rot.gguf";
  auto r = run_command(bin() + " quantize " + q(base) + " " + q(out) + " --method smoothquant --rotate --sq-alpha 0.5 --calib " +
                       q(w8_texts().calib_path) + " --calib-samples 2 --calib-seq-len 64 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto src = open_model_source(out);
  ASSERT_TRUE(src.ok()) << src.status().message();
  const TensorView* rot = (*src)->find("blk.0.ffn_down.weight.rot");
  ASSERT_NE(rot, nullptr) << "ffn_down kept no rotation";
  ASSERT_EQ(rot->shape, (std::vector<int64_t>{43, 43}));
  auto g = run_command(bin() + " generate -m " + q(out) + " -p 'Once upon a time' -n 8 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  // Loaded with the regrouping on, it still computes what the original does, within W8A8's error.
  auto a = load_model(base);
  auto b = load_model(out);
  ASSERT_TRUE(a.ok() && b.ok()) << (b.ok() ? "" : b.status().message());
  EvalOptions o;
  o.n_ctx = 64;
  o.n_chunks = 4;
  o.threads = 2;
  o.speed = false;
  auto rows = run_eval({{a->get(), "f32"}, {b->get(), "rot"}}, w8_texts().eval_text.substr(0, 20000), o);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_LT((*rows)[1].kld, 0.02);
  EXPECT_GT((*rows)[1].same_top1_pct, 90.0);
}

TEST(QuantizeW8A8Test, SmoothingAloneKeepsTheLogits) {
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesModel);
  LLMOPT_REQUIRE_DATA(test::kTinyStoriesText);
  const std::string so = w8_quantize("smooth-only", "--method smoothquant --smooth-only --calib-samples 8");
  auto a = load_model(test::tinystories_dir());
  auto b = load_model(so);
  ASSERT_TRUE(a.ok() && b.ok());
  // The weights and norms did change (the migration happened) ...
  auto sa = open_model_source(test::tinystories_dir());
  auto sb = open_model_source(so);
  ASSERT_TRUE(sa.ok() && sb.ok());
  const TensorView* na = (*sa)->find("blk.0.attn_norm.weight");
  const TensorView* nb = (*sb)->find("blk.0.attn_norm.weight");
  ASSERT_TRUE(na && nb && na->type == DType::kF32 && nb->type == DType::kF32);
  EXPECT_NE(std::vector<float>(na->f32(), na->f32() + na->numel()),
            std::vector<float>(nb->f32(), nb->f32() + nb->numel()));
  // ... and the function did not.
  ThreadPool pool(2);
  const std::vector<int32_t> ids = (*a)->tokenizer().encode(w8_texts().eval_text.substr(0, 400), true);
  const std::vector<float> la = test::all_logits(**a, ids, pool);
  const std::vector<float> lb = test::all_logits(**b, ids, pool);
  ASSERT_EQ(la.size(), lb.size());
  double worst = 0.0;
  for (size_t i = 0; i < la.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(la[i]) - lb[i]) / (1.0 + std::fabs(la[i])));
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(QuantizeW8A8Test, BadFlagsAndBrokenFilesAreSpecificErrors) {
  const std::string dir = test::temp_dir();
  const std::string tiny = dir + "/tiny.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset llama-tiny --outtype f32 -o " + q(tiny)).exit_code, 0);
  std::string text;
  for (int i = 0; i < 300; ++i) text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + ". ";
  test::write_file(dir + "/calib.txt", text);
  const std::string calib = " --calib " + q(dir + "/calib.txt") + " --calib-samples 2 --calib-seq-len 32";
  const std::string base = bin() + " quantize " + q(tiny) + " " + q(dir + "/o.gguf") + " ";
  auto one_error = [](const test::CmdResult& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "missing '" << needle << "' in: " << r.err;
  };
  one_error(run_command(base + "--method rtn --act static"), "--act static needs calibration text");
  one_error(run_command(base + "--method smoothquant"), "--method smoothquant needs calibration text");
  one_error(run_command(base + "--method rtn --act dynamic --bits 4"), "--bits 4 is not supported there");
  one_error(run_command(base + "--method awq --act dynamic" + calib), "not awq");
  one_error(run_command(base + "--method rtn --act sometimes"), "unknown --act 'sometimes'");
  one_error(run_command(base + "--method rtn --act dynamic --granularity group"), "per output row");
  one_error(run_command(base + "--method rtn --act dynamic --asym"), "W8A8 weights are symmetric");
  one_error(run_command(base + "--method smoothquant --sq-alpha 1.5" + calib), "--sq-alpha");
  one_error(run_command(base + "--method rtn --act-order"), "--act-order applies to GPTQ only");
  one_error(run_command(base + "--method rtn --rotate"), "--rotate applies to W8A8");
  one_error(run_command(base + "--method rtn --act dynamic --rotate"), "--rotate (chosen per input by the output error) needs calibration text");
  one_error(run_command(base + "--method smoothquant --rotate --smooth-only" + calib), "exclude each other");
  one_error(run_command(base + "--method smoothquant --sq-weights best" + calib), "unknown --sq-weights 'best'");
  one_error(run_command(base + "--method gptq --act dynamic --sq-weights gptq" + calib), "--sq-weights applies to --method smoothquant only");
  one_error(run_command(base + "--method rtn --smooth-only"), "--smooth-only applies to --method smoothquant");
  one_error(run_command(base + "--method awq --scale-search" + calib), "--scale-search applies to weight-only --method gptq");
  one_error(run_command(base + "--method gptq --act dynamic --scale-search" + calib), "--scale-search applies");

  // A good W8A8 file, per tensor, GPTQ with act-order; then the same without a companion tensor, or with
  // a bad activation scale: the loader names the tensor.
  const std::string good = dir + "/good.gguf";
  auto r = run_command(bin() + " quantize " + q(tiny) + " " + q(good) +
                       " --method gptq --act static --act-order --granularity tensor" + calib);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("blk.0.attn_q.weight i8_ch gptq tensor, activations static"), std::string::npos) << r.err;
  auto g = run_command(bin() + " generate -m " + q(good) + " -p 'ab' -n 4 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  auto src = open_model_source(good);
  ASSERT_TRUE(src.ok());
  auto rewrite = [&](const std::string& path, const std::string& drop, const std::string& bad_act) {
    MemoryWeightSource out(path);
    out.mutable_metadata() = (*src)->metadata();
    const float neg = -1.0f;
    for (const NamedTensor& t : (*src)->tensors()) {
      if (t.name == drop) continue;
      TensorView v = t.view;
      if (t.name == bad_act) v.data = reinterpret_cast<const uint8_t*>(&neg);
      out.add_tensor(t.name, v);
    }
    ConvertOptions co;
    co.outtype = DType::kF32;
    ASSERT_TRUE(write_gguf_model(out, path, co).ok());
  };
  rewrite(dir + "/noscale.gguf", "blk.1.ffn_up.weight.scale", "");
  rewrite(dir + "/badact.gguf", "", "blk.0.attn_k.weight.act_scale");
  auto e1 = run_command(bin() + " generate -m " + q(dir + "/noscale.gguf") + " -p 'ab' -n 2");
  EXPECT_NE(e1.exit_code, 0);
  EXPECT_NE(e1.err.find("'blk.1.ffn_up.weight' has type i8_ch but its row scales 'blk.1.ffn_up.weight.scale' are missing"),
            std::string::npos)
      << e1.err;
  auto e2 = run_command(bin() + " generate -m " + q(dir + "/badact.gguf") + " -p 'ab' -n 2");
  EXPECT_NE(e2.exit_code, 0);
  EXPECT_NE(e2.err.find("'blk.0.attn_k.weight.act_scale' must be a positive activation scale"), std::string::npos)
      << e2.err;
  // A rotated file (GPT-2: an untied head after a layer norm with bias): the head and the blocks searched
  // with and without the rotation; a rotation that is not orthogonal, or does not fit the rows, is named
  // by the loader.
  const std::string gpt2 = dir + "/gpt2.gguf", rotated = dir + "/rot.gguf";
  ASSERT_EQ(run_command(bin() + " synth --preset gpt2-tiny --outtype f32 -o " + q(gpt2)).exit_code, 0);
  r = run_command(bin() + " quantize " + q(gpt2) + " " + q(rotated) + " --method smoothquant --rotate --sq-weights gptq" + calib);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[head] output.weight i8_ch smoothquant channel, activations per token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("input rotated"), std::string::npos) << r.err;
  g = run_command(bin() + " generate -m " + q(rotated) + " -p 'ab' -n 4 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
  auto rsrc = open_model_source(rotated);
  ASSERT_TRUE(rsrc.ok());
  std::string rot_name;
  for (const NamedTensor& t : (*rsrc)->tensors()) {
    if (t.name.size() > 4 && t.name.substr(t.name.size() - 4) == ".rot") rot_name = t.name;
  }
  ASSERT_FALSE(rot_name.empty()) << "no rotation was kept";
  auto corrupt = [&](const std::string& path, bool reshape) {
    MemoryWeightSource out(path);
    out.mutable_metadata() = (*rsrc)->metadata();
    std::vector<float> junk;
    for (const NamedTensor& t : (*rsrc)->tensors()) {
      TensorView v = t.view;
      if (t.name == rot_name) {
        junk.assign(v.f32(), v.f32() + v.numel());
        if (reshape) {
          junk.resize(junk.size() + 2 * v.shape[0] + 1, 0.0f);  // one more row and column
          v.shape = {v.shape[0] + 1, v.shape[0] + 1};
        } else {
          for (float& x : junk) x *= 1.5f;
        }
        v.data = reinterpret_cast<const uint8_t*>(junk.data());
        v.nbytes = junk.size() * sizeof(float);
      }
      out.add_tensor(t.name, v);
    }
    ConvertOptions co;
    co.outtype = DType::kF32;
    ASSERT_TRUE(write_gguf_model(out, path, co).ok());
  };
  corrupt(dir + "/notorth.gguf", false);
  corrupt(dir + "/badshape.gguf", true);
  auto e3 = run_command(bin() + " generate -m " + q(dir + "/notorth.gguf") + " -p 'ab' -n 2");
  EXPECT_NE(e3.exit_code, 0);
  EXPECT_NE(e3.err.find("'" + rot_name + "' is not orthogonal"), std::string::npos) << e3.err;
  auto e4 = run_command(bin() + " generate -m " + q(dir + "/badshape.gguf") + " -p 'ab' -n 2");
  EXPECT_NE(e4.exit_code, 0);
  EXPECT_NE(e4.err.find(rot_name), std::string::npos) << e4.err;

  // An i8_ch model is not an input for re-quantization or conversion.
  one_error(run_command(bin() + " quantize " + q(good) + " " + q(dir + "/x.gguf") + " --type q4_0"),
            "already quantized (i8_ch)");
}

}  // namespace
}  // namespace llmopt
