// GGUF-grid quantization: fp16 parameters, codes in the block's range, packing that the kernels'
// block dequantizers read back bit for bit, group parameters repeated over 32-blocks, GPTQ on the grid
// beating RTN on correlated activations, and the refusals.
#include "quant/gguf_grid.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

using testdata::gaussian;
using testdata::heavy_tailed_weights;
using testdata::hessian_of;
using testdata::llm_activations;

bool is_half(float x) { return fp16_to_fp32(fp32_to_fp16(x)) == x; }

struct GridCase {
  GridType type;
  int64_t group;
};

std::vector<GridCase> all_cases() {
  std::vector<GridCase> cs;
  for (GridType t : {GridType::kQ4_0, GridType::kQ4_1, GridType::kQ8_0}) {
    for (int64_t g : {32, 64, 128, 0}) cs.push_back({t, g});
  }
  return cs;
}

void expect_packs_exactly(const GridTensor& t) {
  const std::vector<uint8_t> blocks = t.pack();
  const DType dt = grid_dtype(t.spec.type);
  ASSERT_EQ(blocks.size(), static_cast<size_t>(t.rows * t.cols / 32) * dtype_info(dt).type_size);
  std::vector<float> via_kernels(static_cast<size_t>(t.rows * t.cols));
  kernels::dequantize_row(dt, blocks.data(), via_kernels.data(), t.rows * t.cols);
  const std::vector<float> mine = t.dequantize();
  ASSERT_EQ(mine.size(), via_kernels.size());
  for (size_t i = 0; i < mine.size(); ++i) {
    ASSERT_EQ(std::memcmp(&mine[i], &via_kernels[i], sizeof(float)), 0)
        << grid_name(t.spec.type) << " group " << t.spec.group_size << " element " << i << ": " << mine[i]
        << " vs " << via_kernels[i];
  }
  // A group longer than 32 repeats its parameters in each of its 32-blocks.
  const size_t bb = dtype_info(dt).type_size;
  const int64_t per_group = t.group_len() / 32;
  for (int64_t b = 0; b < t.rows * t.cols / 32; ++b) {
    const int64_t first = b - b % per_group;
    EXPECT_EQ(std::memcmp(blocks.data() + b * bb, blocks.data() + first * bb, dt == DType::kQ4_1 ? 4 : 2), 0) << b;
  }
}

TEST(GgufGridTest, RtnParamsAreHalfCodesInRangeAndPackingIsBitExact) {
  const int64_t rows = 6, cols = 256;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 7);
  for (const GridCase& c : all_cases()) {
    auto t = grid_quantize_rtn(w.data(), rows, cols, {c.type, c.group});
    ASSERT_TRUE(t.ok()) << t.status().message();
    ASSERT_EQ(static_cast<int64_t>(t->params.size()), rows * (c.group == 0 ? 1 : cols / c.group));
    for (const GridParams& p : t->params) {
      EXPECT_TRUE(is_half(p.d) && is_half(p.m)) << p.d << " " << p.m;
      if (c.type != GridType::kQ4_1) {
        EXPECT_EQ(p.m, 0.0f);
      }
    }
    for (int16_t q : t->codes) {
      EXPECT_GE(q, grid_code_min(c.type));
      EXPECT_LE(q, grid_code_max(c.type));
    }
    expect_packs_exactly(*t);
    // Round to nearest: within half a step, except where the grid's range ends (Q4_0's +8 side).
    const std::vector<float> d = t->dequantize();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = 0; k < cols; ++k) {
        const GridParams p = t->params_of(r, k);
        const float step = std::fabs(p.d);
        const float bound = (c.type == GridType::kQ4_0 ? 1.0f : 0.5f) * step * 1.01f + 1e-3f * std::fabs(p.m) + 1e-7f;
        EXPECT_LE(std::fabs(w[r * cols + k] - d[r * cols + k]), bound) << grid_name(c.type) << " " << r << "," << k;
      }
    }
  }
}

TEST(GgufGridTest, Q8_0GridMatchesTheReferenceQuantizerClosely) {
  // Same grid as llama.cpp's Q8_0 (d = amax / 127): the dequantized values agree within one step.
  const int64_t cols = 512;
  const std::vector<float> w = gaussian(cols, 3);
  auto t = grid_quantize_rtn(w.data(), 1, cols, {GridType::kQ8_0, 32});
  ASSERT_TRUE(t.ok());
  std::vector<uint8_t> ref(static_cast<size_t>(cols / 32) * dtype_info(DType::kQ8_0).type_size);
  kernels::quantize_row(DType::kQ8_0, w.data(), ref.data(), cols);
  EXPECT_EQ(std::memcmp(ref.data(), t->pack().data(), 2), 0);  // the same fp16 scale in block 0
}

TEST(GgufGridTest, GptqOnTheGridBeatsRtnAndPacksExactly) {
  const int64_t rows = 32, cols = 128, n = 512;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 11);
  const std::vector<float> x = llm_activations(n, cols, 12);
  const std::vector<float> h = hessian_of(x, n, cols);
  ASSERT_FALSE(h.empty());
  for (const GridCase& c : all_cases()) {
    if (c.type == GridType::kQ8_0 && c.group == 64) continue;  // keep the test short
    auto rtn = grid_quantize_rtn(w.data(), rows, cols, {c.type, c.group});
    GridGptqOptions opt;
    opt.block_size = 32;  // rounded up to whole groups
    auto gptq = grid_quantize_gptq(w.data(), rows, cols, h, {c.type, c.group}, opt);
    ASSERT_TRUE(rtn.ok() && gptq.ok()) << gptq.status().message();
    const std::vector<float> dr = rtn->dequantize(), dg = gptq->dequantize();
    const double er = layer_output_error(x.data(), n, w.data(), dr.data(), rows, cols);
    const double eg = layer_output_error(x.data(), n, w.data(), dg.data(), rows, cols);
    EXPECT_LT(eg, er) << grid_name(c.type) << " group " << c.group;
    expect_packs_exactly(*gptq);
    for (const GridParams& p : gptq->params) EXPECT_TRUE(is_half(p.d) && is_half(p.m));
  }
}

TEST(GgufGridTest, GptqActOrderUsesStaticGroupsAndBeatsRtn) {
  const int64_t rows = 16, cols = 128, n = 512;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 31);
  const std::vector<float> x = llm_activations(n, cols, 32);
  const std::vector<float> h = hessian_of(x, n, cols);
  for (const GridCase& c : all_cases()) {
    GridGptqOptions opt;
    opt.act_order = true;
    opt.scale_search = false;  // full-range parameters, to compare them with RTN's
    auto t = grid_quantize_gptq(w.data(), rows, cols, h, {c.type, c.group}, opt);
    auto rtn = grid_quantize_rtn(w.data(), rows, cols, {c.type, c.group});
    ASSERT_TRUE(t.ok() && rtn.ok()) << t.status().message();
    // Static groups: every group's parameters are RTN's, from its original columns ...
    ASSERT_EQ(t->params.size(), rtn->params.size());
    for (size_t g = 0; g < t->params.size(); ++g) {
      EXPECT_EQ(t->params[g].d, rtn->params[g].d);
      EXPECT_EQ(t->params[g].m, rtn->params[g].m);
    }
    // ... and the error compensation in act-order lowers the layer-output error below RTN's.
    const std::vector<float> dr = rtn->dequantize(), dt = t->dequantize();
    EXPECT_LT(layer_output_error(x.data(), n, w.data(), dt.data(), rows, cols),
              layer_output_error(x.data(), n, w.data(), dr.data(), rows, cols))
        << grid_name(c.type) << " group " << c.group;
    expect_packs_exactly(*t);
  }
}

TEST(GgufGridTest, ScaleSearchMinimizesTheWeightedGroupError) {
  // Against a brute force over the clip ratios written out here: the search's parameters give the
  // smallest importance-weighted squared error, and with one dominant column that column is kept
  // almost exact even though clipping would suit the others.
  std::vector<float> w = gaussian(32, 5);
  w[7] = 4.0f;  // an outlier the full range must cover
  std::vector<float> imp(32, 1.0f);
  for (GridType t : {GridType::kQ4_0, GridType::kQ4_1, GridType::kQ8_0}) {
    for (bool weighted : {false, true}) {
      imp[7] = weighted ? 1000.0f : 1.0f;
      auto werr = [&](GridParams p) {
        double e = 0.0;
        for (int i = 0; i < 32; ++i) {
          const double d = w[i] - grid_value(grid_quantize_value(w[i], p, t), p, t);
          e += imp[i] * d * d;
        }
        return e;
      };
      const GridParams got = grid_search_group_params(t, w.data(), 32, imp.data());
      double best = werr(grid_group_params(t, w.data(), 32, 1.0f));
      for (int k = 1; k <= 25; ++k) best = std::min(best, werr(grid_group_params(t, w.data(), 32, 1.0f - 0.02f * k)));
      EXPECT_DOUBLE_EQ(werr(got), best) << grid_name(t);
      EXPECT_LE(werr(got), werr(grid_group_params(t, w.data(), 32, 1.0f))) << grid_name(t);
      if (weighted) {
        const double d7 = w[7] - grid_value(grid_quantize_value(w[7], got, t), got, t);
        EXPECT_LT(std::fabs(d7), 0.5 * std::fabs(got.d)) << grid_name(t);  // not clipped
      }
    }
  }
}

TEST(GgufGridTest, GptqScaleSearchLowersTheLayerOutputError) {
  const int64_t rows = 32, cols = 128, n = 512;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 51);
  const std::vector<float> x = llm_activations(n, cols, 52);
  const std::vector<float> h = hessian_of(x, n, cols);
  for (GridType t : {GridType::kQ4_0, GridType::kQ4_1}) {
    for (int64_t group : {int64_t{32}, int64_t{128}}) {
      GridGptqOptions on, off;
      on.scale_search = true;
      auto a = grid_quantize_gptq(w.data(), rows, cols, h, {t, group}, on);
      auto b = grid_quantize_gptq(w.data(), rows, cols, h, {t, group}, off);
      ASSERT_TRUE(a.ok() && b.ok());
      const std::vector<float> da = a->dequantize(), db = b->dequantize();
      EXPECT_LT(layer_output_error(x.data(), n, w.data(), da.data(), rows, cols),
                layer_output_error(x.data(), n, w.data(), db.data(), rows, cols))
          << grid_name(t) << " group " << group;
      expect_packs_exactly(*a);
    }
  }
}

TEST(GgufGridTest, GptqActOrderOnASortedDiagonalIsThePlainOrder) {
  // A Hessian whose diagonal already descends: act-order visits columns in their own order, so per
  // channel (static parameters either way) the result is the plain one, code for code.
  const int64_t rows = 8, cols = 64, n = 256;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 41);
  std::vector<float> x = llm_activations(n, cols, 42);
  for (int64_t j = 0; j < cols; ++j) {  // column j: RMS (cols - j) / cols
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i * cols + j]) * x[i * cols + j];
    const float f = static_cast<float>((cols - j) / (cols * std::sqrt(ss / n)));
    for (int64_t i = 0; i < n; ++i) x[i * cols + j] *= f;
  }
  const std::vector<float> h = hessian_of(x, n, cols);
  for (int64_t j = 1; j < cols; ++j) ASSERT_GT(h[(j - 1) * cols + j - 1], h[j * cols + j]) << j;
  GridGptqOptions plain, ordered;
  ordered.act_order = true;
  auto a = grid_quantize_gptq(w.data(), rows, cols, h, {GridType::kQ4_0, 0}, plain);
  auto b = grid_quantize_gptq(w.data(), rows, cols, h, {GridType::kQ4_0, 0}, ordered);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->codes, b->codes);
}

TEST(GgufGridTest, GptqBlockSizeDoesNotChangeTheResultMuch) {
  const int64_t rows = 8, cols = 128, n = 256;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 21);
  const std::vector<float> x = llm_activations(n, cols, 22);
  const std::vector<float> h = hessian_of(x, n, cols);
  GridGptqOptions a, b;
  a.block_size = 32;
  b.block_size = 128;
  auto ta = grid_quantize_gptq(w.data(), rows, cols, h, {GridType::kQ4_0, 32}, a);
  auto tb = grid_quantize_gptq(w.data(), rows, cols, h, {GridType::kQ4_0, 32}, b);
  ASSERT_TRUE(ta.ok() && tb.ok());
  int64_t diff = 0;
  for (size_t i = 0; i < ta->codes.size(); ++i) diff += ta->codes[i] != tb->codes[i];
  EXPECT_LE(diff, static_cast<int64_t>(ta->codes.size() / 50));
}

TEST(GgufGridTest, AwqOnTheGridNeverLosesToRtnAndBeatsItOnOutlierChannels) {
  const int64_t rows = 24, cols = 128, n = 256;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 31);
  const std::vector<float> x = llm_activations(n, cols, 32);
  for (const GridCase& c : all_cases()) {
    if (c.group == 64) continue;
    auto r = grid_quantize_awq(w.data(), rows, cols, x.data(), n, {c.type, c.group});
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_LE(r->output_error, r->rtn_error) << grid_name(c.type) << " " << c.group;
    if (c.type != GridType::kQ8_0) {
      EXPECT_LT(r->output_error, 0.95 * r->rtn_error) << grid_name(c.type);
    }
    expect_packs_exactly(r->quantized);
    // The reported error is that of deq(Q) / s against w.
    std::vector<float> eff = r->quantized.dequantize();
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t k = 0; k < cols; ++k) eff[i * cols + k] /= r->scales[k];
    }
    const double e = layer_output_error(x.data(), n, w.data(), eff.data(), rows, cols);
    EXPECT_NEAR(e, r->output_error, 1e-3 * r->output_error + 1e-9);
  }
  GridAwqOptions no_scale;
  no_scale.scale_search = false;
  auto r = grid_quantize_awq(w.data(), rows, cols, x.data(), n, {GridType::kQ4_0, 32}, no_scale);
  ASSERT_TRUE(r.ok());
  for (float s : r->scales) EXPECT_EQ(s, 1.0f);
  EXPECT_LE(r->output_error, r->rtn_error);
  EXPECT_FALSE(grid_quantize_awq(w.data(), rows, cols, x.data(), 0, {GridType::kQ4_0, 32}).ok());
}

// A caller's scale_error replaces the layer output error in the alpha search: it sees deq(Q(w s)) / s
// for each alpha in order, and the alpha with its smallest value wins (here an error that prefers the
// fourth alpha, 0.15, computed from the weights it is given so that a wrong w_eff shows).
TEST(GgufGridTest, AwqScaleErrorFromTheCallerPicksTheAlpha) {
  const int64_t rows = 16, cols = 64, n = 128;
  const std::vector<float> w = heavy_tailed_weights(rows, cols, 41);
  const std::vector<float> x = llm_activations(n, cols, 42);
  std::vector<std::vector<float>> seen;
  GridAwqOptions o;
  o.scale_error = [&](const std::vector<float>& w_eff) -> Result<double> {
    seen.push_back(w_eff);
    const double e = layer_output_error(x.data(), n, w.data(), w_eff.data(), rows, cols);
    return seen.size() == 4 ? e * 1e-3 : e + 1e6;
  };
  auto r = grid_quantize_awq(w.data(), rows, cols, x.data(), n, {GridType::kQ4_0, 32}, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(seen.size(), 21u);
  EXPECT_FLOAT_EQ(r->alpha, 0.15f);
  EXPECT_NEAR(r->output_error, 1e-3 * layer_output_error(x.data(), n, w.data(), seen[3].data(), rows, cols), 1e-9);
  EXPECT_GT(r->rtn_error, 1e6);
  // The first candidate is plain RTN on the grid (s = 1).
  auto rtn = grid_quantize_rtn(w.data(), rows, cols, {GridType::kQ4_0, 32});
  ASSERT_TRUE(rtn.ok());
  EXPECT_EQ(seen[0], rtn->dequantize());
  // The winner's scales: s_j proportional to mean|x_j|^0.15, and the effective weights it was ranked by
  // are deq(Q(w s)) / s (before the clipping search, which may only lower the layer's own error).
  o.clip_search = false;
  seen.clear();
  auto unclipped = grid_quantize_awq(w.data(), rows, cols, x.data(), n, {GridType::kQ4_0, 32}, o);
  ASSERT_TRUE(unclipped.ok());
  std::vector<float> eff = unclipped->quantized.dequantize();
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t k = 0; k < cols; ++k) eff[i * cols + k] /= unclipped->scales[k];
  }
  for (size_t i = 0; i < eff.size(); ++i) EXPECT_NEAR(eff[i], seen[3][i], 1e-6f * (1.0f + std::fabs(eff[i])));
  o.scale_error = [](const std::vector<float>&) -> Result<double> { return error("probe failed"); };
  auto bad = grid_quantize_awq(w.data(), rows, cols, x.data(), n, {GridType::kQ4_0, 32}, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("probe failed"), std::string::npos);
}

TEST(GgufGridTest, RefusalsNameTheReason) {
  auto g = grid_for(8, false);
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("8-bit asymmetric has no GGUF block; use --sym"), std::string::npos);
  EXPECT_FALSE(grid_for(3, true).ok());
  EXPECT_EQ(*grid_for(4, true), GridType::kQ4_0);
  EXPECT_EQ(*grid_for(4, false), GridType::kQ4_1);
  EXPECT_EQ(*grid_for(8, true), GridType::kQ8_0);
  const std::vector<float> w(2 * 96, 1.0f);
  Status s1 = validate_grid({GridType::kQ4_0, 64}, 2, 96);
  EXPECT_NE(s1.message().find("does not divide"), std::string::npos) << s1.message();
  Status s2 = validate_grid({GridType::kQ4_0, 0}, 2, 48);
  EXPECT_NE(s2.message().find("32"), std::string::npos) << s2.message();
  EXPECT_TRUE(validate_grid({GridType::kQ4_0, 32}, 2, 96).ok());
  EXPECT_FALSE(grid_quantize_rtn(w.data(), 2, 96, {GridType::kQ4_0, 64}).ok());
  std::vector<float> bad = w;
  bad[5] = std::nanf("");
  EXPECT_FALSE(grid_quantize_rtn(bad.data(), 2, 96, {GridType::kQ4_0, 32}).ok());
}

TEST(GgufGridTest, ZeroGroupsQuantizeToZero) {
  const std::vector<float> w(64, 0.0f);
  for (GridType t : {GridType::kQ4_0, GridType::kQ4_1, GridType::kQ8_0}) {
    auto q = grid_quantize_rtn(w.data(), 1, 64, {t, 32});
    ASSERT_TRUE(q.ok());
    for (float v : q->dequantize()) EXPECT_EQ(v, 0.0f);
    expect_packs_exactly(*q);
  }
}

}  // namespace
}  // namespace llmopt::quant
