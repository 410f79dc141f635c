// AWQ's block-output objective (cli/quantize_run.h, awq_block_error) against the math: attention's output
// is linear in V and the MLP's (silu(gate) * up) in up, so scaling attn_v's (or ffn_up's) weights by
// (1 + e) scales the module's output by (1 + e), and the error must be e^2 ||Y0 P^T||^2, with Y0 and the
// sum computed here from a plain capture and a double loop. The group's weights are left as they were.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "cli/quantize_run.h"
#include "model/loader.h"
#include "model/synth.h"

namespace llmopt::cli {
namespace {

struct AwqProbeFixture {
  MethodArgs args;
  std::map<std::string, float*> f32;
  std::unique_ptr<Model> model;
  ThreadPool pool{2};
  std::vector<std::vector<int32_t>> windows;
  std::unique_ptr<MethodRun> run;

  AwqProbeFixture() {
    SynthOptions so;
    so.config = *find_synth_preset("llama-tiny");
    auto made = synth_model(so);
    EXPECT_TRUE(made.ok()) << made.status().message();
    std::shared_ptr<const WeightSource> src = std::move(made).value();
    auto work = f32_copy_of(src, &f32);
    auto m = load_model_from_source(work, {});
    EXPECT_TRUE(m.ok()) << m.status().message();
    model = std::move(m).value();
    std::mt19937 rng(7);
    std::uniform_int_distribution<int32_t> tok(0, model->config().n_vocab - 1);
    for (int w = 0; w < 3; ++w) {
      windows.emplace_back();
      for (int i = 0; i < 24; ++i) windows.back().push_back(tok(rng));
    }
    run = std::make_unique<MethodRun>(args);
    run->work = work;
    run->f32 = f32;
    run->model = model.get();
    run->pool = &pool;
    run->windows = &windows;
  }

  std::vector<float> concat(const std::vector<std::string>& names) const {
    std::vector<float> out;
    for (const std::string& n : names) out.insert(out.end(), f32.at(n), f32.at(n) + run->view_of(n)->numel());
    return out;
  }

  // ||Y0 diag(s) P^T||^2 in double, Y0 = the probe weight's captured input.
  double probe_energy(const std::string& probe, const std::vector<float>* s, int32_t il = 0) {
    InputCapture cap;
    const TensorView* pv = run->view_of(probe);
    cap.want(pv->data, il);
    run_calibration(*model, windows, &cap, pool);
    const std::vector<float>& y = cap.rows(pv->data);
    const int64_t cols = pv->cols(), rows = pv->rows(), n = static_cast<int64_t>(y.size()) / cols;
    EXPECT_EQ(n, 3 * 24);
    const float* p = f32.at(probe);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t r = 0; r < rows; ++r) {
        double dot = 0.0;
        for (int64_t c = 0; c < cols; ++c) dot += double(y[i * cols + c]) * (s ? (*s)[c] : 1.0) * p[r * cols + c];
        sum += dot * dot;
      }
    }
    return sum;
  }
};

// Scales the rows of `name` inside the concatenated weights of `names` by f.
void scale_part(std::vector<float>& w, const AwqProbeFixture& fx, const std::vector<std::string>& names,
                const std::string& name, float f) {
  size_t off = 0;
  for (const std::string& n : names) {
    const size_t len = static_cast<size_t>(fx.run->view_of(n)->numel());
    if (n == name) {
      for (size_t i = 0; i < len; ++i) w[off + i] *= f;
    }
    off += len;
  }
}

// Layer 0 runs every candidate from the embeddings; layer 1 from the recorded residual stream entering
// it (the blocks before it are not run again), which must give the same errors.
TEST(AwqBlockObjective, AttentionErrorIsTheMathOfAScaledV) {
  AwqProbeFixture fx;
  ASSERT_GE(fx.model->config().n_layer, 2);
  for (int32_t il : {0, 1}) {
    const std::string b = "blk." + std::to_string(il) + ".";
    const std::vector<LinearGroup> groups = layer_groups(Arch::kLlama, il);
    const LinearGroup& qkv = groups[0];
    ASSERT_EQ(qkv.weights.size(), 3u);
    AwqScaleError err = awq_block_error(*fx.run, qkv, il, nullptr);
    ASSERT_TRUE(err);
    const std::vector<float> before = fx.concat(qkv.weights);
    auto same = err(before);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(*same, 0.0) << "the unchanged weights reproduce the reference pass exactly, layer " << il;

    std::vector<float> w = before;
    scale_part(w, fx, qkv.weights, b + "attn_v.weight", 1.25f);
    auto e = err(w);
    ASSERT_TRUE(e.ok());
    const double want = 0.0625 * fx.probe_energy(b + "attn_output.weight", nullptr, il);
    EXPECT_GT(want, 0.0);
    EXPECT_NEAR(*e, want, 1e-3 * want) << "layer " << il;
    EXPECT_EQ(fx.concat(qkv.weights), before) << "the original weights are restored";

    // Q and K reach the output through the softmax: not linear, but an error all the same.
    w = before;
    scale_part(w, fx, qkv.weights, b + "attn_q.weight", 1.5f);
    auto eq = err(w);
    ASSERT_TRUE(eq.ok());
    EXPECT_GT(*eq, 0.0);

    EXPECT_FALSE(awq_block_error(*fx.run, groups[1], il, nullptr)) << "attn_output is its own module";
    EXPECT_FALSE(awq_block_error(*fx.run, groups[3], il, nullptr)) << "ffn_down is its own module";
    EXPECT_FALSE(err(std::vector<float>(3)).ok()) << "weights of the wrong size are an error";
  }
}

TEST(AwqBlockObjective, MlpErrorIncludesTheScaleFoldedIntoFfnDown) {
  AwqProbeFixture fx;
  const std::vector<LinearGroup> groups = layer_groups(Arch::kLlama, 0);
  const LinearGroup& gate_up = groups[2];
  const int64_t ff = fx.run->view_of("blk.0.ffn_down.weight")->cols();
  std::vector<float> s(static_cast<size_t>(ff));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.5f, 2.0f);
  for (float& v : s) v = u(rng);
  AwqScaleError err = awq_block_error(*fx.run, gate_up, 0, &s);
  ASSERT_TRUE(err);
  std::vector<float> w = fx.concat(gate_up.weights);
  scale_part(w, fx, gate_up.weights, "blk.0.ffn_up.weight", 0.8f);
  auto e = err(w);
  ASSERT_TRUE(e.ok());
  const double want = 0.04 * fx.probe_energy("blk.0.ffn_down.weight", &s);
  EXPECT_NEAR(*e, want, 1e-3 * want);
}

}  // namespace
}  // namespace llmopt::cli

namespace llmopt::cli {
namespace {

// AWQ's search subsamples the captured rows. Rows of 512 windows of 128 tokens, each row holding its
// position: an even stride took positions 0 and 64 only; the sample must hold positions in their
// proportions (position 0: 1/128 of the rows), without repeats, in order.
TEST(AwqSubsample, KeepsThePositionsOfTheWindowsInProportion) {
  const int64_t cols = 2, n = 512 * 128;
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (int64_t i = 0; i < n; ++i) {
    x[i * cols] = static_cast<float>(i % 128);
    x[i * cols + 1] = static_cast<float>(i);
  }
  const std::vector<float> s = subsample_rows(x, cols, 1024);
  ASSERT_EQ(s.size(), 1024u * cols);
  int64_t first = 0, distinct_positions = 0;
  std::vector<int> seen(128, 0);
  for (int64_t i = 0; i < 1024; ++i) {
    first += s[i * cols] == 0.0f;
    if (seen[static_cast<size_t>(s[i * cols])]++ == 0) ++distinct_positions;
    if (i > 0) {
      EXPECT_LT(s[(i - 1) * cols + 1], s[i * cols + 1]) << "in order, no repeats";
    }
  }
  EXPECT_LE(first, 24) << "position 0 is 8 of 1024 rows in expectation";
  EXPECT_EQ(distinct_positions, 128);
  EXPECT_EQ(subsample_rows(x, cols, n), x) << "no more rows than asked: all of them";
}

}  // namespace
}  // namespace llmopt::cli
