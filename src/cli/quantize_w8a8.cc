// See quantize_w8a8.h.
#include "cli/quantize_w8a8.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "cli/quantize_run.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "kernels/rotate.h"
#include "quant/affine.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "quant/rotation.h"
#include "quant/smoothquant.h"
#include "quant/w8a8.h"

namespace llmopt::cli {

Result<std::vector<float>> smoothing_for(const std::vector<std::pair<const float*, int64_t>>& ws, const float* x,
                                         int64_t n_x, int64_t cols, float alpha) {
  std::vector<float> act_max, w_max;
  quant::update_channel_abs_max(x, n_x, cols, act_max);
  for (const auto& [w, rows] : ws) quant::update_channel_abs_max(w, rows, cols, w_max);
  return quant::smoothing_scales(act_max, w_max, alpha);
}

void divide_columns(std::vector<float>& x, int64_t cols, const std::vector<float>& s) {
  const int64_t n = static_cast<int64_t>(x.size()) / cols;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < cols; ++j) x[i * cols + j] /= s[j];
  }
}

Result<float> static_act_scale(const std::vector<float>& x, float clip) {
  float amax = 0.0f;
  for (float v : x) {
    if (!std::isfinite(v)) return error("non-finite calibration activation");
    amax = std::fmax(amax, std::fabs(v));
  }
  if (amax == 0.0f) return error("the calibration activations are all zero; no static scale can be set");
  return quant::static_activation_scale(amax * clip);
}

namespace {

// x [n][cols] . w^T for an f32 matrix w [rows][cols].
std::vector<float> matmul_f32(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& x,
                              int64_t n, ThreadPool& pool) {
  std::vector<float> y(static_cast<size_t>(n * rows));
  kernels::matmul(f32_matrix_view(w.data(), rows, cols), x.data(), n, y.data(), pool);
  return y;
}

// || y - Qa(xs) . Qw(w)^T ||^2 for one candidate (xs: the smoothed inputs, w: [rows][cols] smoothed).
Result<double> w8a8_error(const std::vector<float>& xs_in, int64_t n, int64_t cols, const std::vector<float>& w_in,
                          int64_t rows, const std::vector<float>& y, const SmoothSearch& opt, float clip,
                          ThreadPool& pool) {
  std::vector<float> xr, wr;
  if (opt.rot != nullptr) {  // (x R)(W R)^T = x W^T: only the rounding sees the rotation
    xr.resize(xs_in.size());
    wr.resize(w_in.size());
    kernels::rotate_rows(opt.rot, opt.rot_m, xs_in.data(), n, cols, xr.data());
    kernels::rotate_rows(opt.rot, opt.rot_m, w_in.data(), rows, cols, wr.data());
  }
  const std::vector<float>& xs = opt.rot != nullptr ? xr : xs_in;
  const std::vector<float>& w = opt.rot != nullptr ? wr : w_in;
  quant::AffineSpec as;
  as.bits = 8;
  as.symmetric = true;
  as.granularity = opt.per_tensor ? quant::AffineSpec::kTensor : quant::AffineSpec::kChannel;
  auto qw = quant::quantize_rtn(w.data(), rows, cols, as);
  if (!qw.ok()) return qw.status();
  const std::vector<float> wq = quant::dequantize(*qw);
  Result<quant::Int8Activations> qa = error("unreachable");
  if (opt.static_act) {
    auto sc = static_act_scale(xs, clip);
    if (!sc.ok()) return sc.status();
    qa = quant::quantize_activation_int8_static(xs.data(), n, cols, *sc);
  } else {
    qa = quant::quantize_activation_int8_dynamic(xs.data(), n, cols);
  }
  if (!qa.ok()) return qa.status();
  const std::vector<float> xq = quant::dequantize_activations(*qa);
  const std::vector<float> yq = matmul_f32(wq, rows, cols, xq, n, pool);
  // Relative error per token, averaged: tokens with large activations (often the first position)
  // would otherwise dominate the sum, while quality is measured per token.
  double e = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double num = 0.0, den = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      const double d = static_cast<double>(yq[i * rows + r]) - y[i * rows + r];
      num += d * d;
      den += static_cast<double>(y[i * rows + r]) * y[i * rows + r];
    }
    e += den > 0.0 ? num / den : num;
  }
  return e / static_cast<double>(n);
}

}  // namespace

Result<SmoothChoice> search_smoothing(const std::vector<std::pair<const float*, int64_t>>& ws,
                                      const std::vector<float>& x_all, int64_t cols, const SmoothSearch& opt,
                                      ThreadPool& pool) {
  // At most 512 evenly strided rows of the captured inputs.
  const int64_t n_all = static_cast<int64_t>(x_all.size()) / cols;
  if (n_all == 0) return error("no calibration inputs");
  const int64_t n = std::min<int64_t>(n_all, 512);
  std::vector<float> x(static_cast<size_t>(n * cols));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i * n_all / n;
    std::copy(x_all.begin() + r * cols, x_all.begin() + (r + 1) * cols, x.begin() + i * cols);
  }
  // All weights reading this input, stacked: [rows][cols].
  int64_t rows = 0;
  std::vector<float> w;
  for (const auto& [p, r] : ws) {
    w.insert(w.end(), p, p + r * cols);
    rows += r;
  }
  // The reference output X W^T in f32.
  const std::vector<float> y = matmul_f32(w, rows, cols, x, n, pool);

  // alpha < 0 stands for "no smoothing" (s = 1), which the search also weighs unless alpha is fixed.
  std::vector<float> alphas;
  if (!opt.can_smooth) {
    alphas = {-1.0f};
  } else if (opt.alpha >= 0.0f) {
    alphas = {opt.alpha};
  } else {
    alphas = {-1.0f};
    for (int i = 0; i <= 20; ++i) alphas.push_back(0.05f * static_cast<float>(i));
  }
  std::vector<float> clips = {1.0f};
  if (opt.static_act) {
    clips = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f, 0.55f, 0.5f, 0.4f, 0.3f, 0.25f, 0.2f, 0.15f, 0.1f,
             0.07f, 0.05f};
  }

  SmoothChoice best;
  bool have = false;
  {
    SmoothSearch none = opt;
    none.rot = nullptr;
    auto e = w8a8_error(x, n, cols, w, rows, y, none, 1.0f, pool);
    if (!e.ok()) return e.status();
    best.error_plain = *e;
  }
  SmoothSearch plain = opt;  // the candidates without the rotation
  plain.rot = nullptr;
  std::vector<const SmoothSearch*> variants = {&plain};
  if (opt.rot != nullptr) variants.push_back(&opt);
  for (const SmoothSearch* var : variants) {
    for (float alpha : alphas) {
      std::vector<float> s;
      std::vector<float> xs = x, wsm = w;
      if (alpha >= 0.0f) {
        auto sv = smoothing_for(ws, x_all.data(), n_all, cols, alpha);
        if (!sv.ok()) return sv.status();
        s = std::move(sv).value();
        divide_columns(xs, cols, s);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) wsm[r * cols + c] *= s[c];
        }
      }
      for (float clip : clips) {
        auto e = w8a8_error(xs, n, cols, wsm, rows, y, *var, clip, pool);
        if (!e.ok()) return e.status();
        if (!have || *e < best.error) {
          have = true;
          best.error = *e;
          best.s = s;
          best.alpha = alpha;
          best.act_clip = clip;
          best.rotated = var->rot != nullptr;
        }
      }
    }
  }
  return best;
}

Result<I8ChWeight> quantize_i8ch(float* w, int64_t rows, int64_t cols, const W8A8Spec& spec,
                                 const std::vector<float>* h, ThreadPool* pool) {
  quant::AffineSpec as;
  as.bits = 8;
  as.symmetric = true;
  as.granularity = spec.per_tensor ? quant::AffineSpec::kTensor : quant::AffineSpec::kChannel;
  Result<quant::AffineTensor> t = error("unreachable");
  if (spec.gptq) {
    if (h == nullptr) return error("GPTQ needs the input's Hessian");
    quant::GptqOptions go;
    go.act_order = spec.act_order;
    go.pool = pool;
    t = quant::quantize_gptq(w, rows, cols, *h, as, go);
  } else {
    t = quant::quantize_rtn(w, rows, cols, as);
  }
  if (!t.ok()) return t.status();
  I8ChWeight out;
  out.codes.resize(static_cast<size_t>(rows * cols));
  out.row_scale.resize(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows * cols; ++i) out.codes[i] = static_cast<int8_t>(t->codes[i]);
  for (int64_t r = 0; r < rows; ++r) out.row_scale[r] = t->scales[spec.per_tensor ? 0 : r];
  // The values the engine computes with: scale * code (the same float product as quant::dequantize).
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      w[r * cols + c] = out.row_scale[r] * static_cast<float>(out.codes[r * cols + c]);
    }
  }
  return out;
}

// W8A8 for one layer, on the inputs captured for it. SmoothQuant folds 1/s where AWQ does (the norm
// producing the input, or ffn_up's rows for LLaMA's ffn_down, searched first) and leaves s = 1 where
// nothing can take it (attn_output, GPT-2's ffn_down). The static activation scale of an input is
// max|x| / 127 over its (smoothed) calibration rows; the working copy gets the quantized weights
// (activation rounding is not simulated there).
Status quantize_layer_w8a8(MethodRun& run, const std::vector<LinearGroup>& groups, int32_t il) {
  using quant::HessianAccumulator;
  const MethodArgs& a = run.a;
  const bool smooth = a.method == "smoothquant";
  auto weights_of = [&](const LinearGroup& g) {
    std::vector<std::pair<const float*, int64_t>> ws;
    for (const std::string& name : g.weights) ws.emplace_back(run.f32.at(name), run.view_of(name)->rows());
    return ws;
  };
  // --rotate: each input may be rotated by R = H (x) Q after smoothing (kernels/rotate.h), where the
  // search finds that this lowers the layer's output error.
  std::map<std::string, std::vector<float>> rot;
  std::map<std::string, int64_t> rot_m;
  if (a.rotate) {
    for (const LinearGroup& g : groups) {
      if (g.weights.empty()) continue;
      const int64_t cols = run.view_of(g.weights[0])->cols();
      auto m = quant::rotation_block(cols);
      if (!m.ok()) return m.status().with_context(g.weights[0]);
      rot[g.weights[0]] = quant::random_orthogonal(*m, 0x526f7461746521ull + static_cast<uint64_t>(il + 1));
      rot_m[g.weights[0]] = *m;
    }
  }
  // SmoothQuant's search for one input (cli/quantize_w8a8.h).
  const bool head = il < 0;  // per-token activations
  auto search = [&](const LinearGroup& g, const std::vector<float>& x, bool can_smooth) {
    SmoothSearch so;
    so.can_smooth = can_smooth;
    so.static_act = a.act != "dynamic" && !head;
    so.per_tensor = run.w8spec.per_tensor;
    so.alpha = a.sq_alpha;
    if (auto it = rot.find(g.weights[0]); it != rot.end()) {
      so.rot = it->second.data();
      so.rot_m = rot_m.at(g.weights[0]);
    }
    auto r = search_smoothing(weights_of(g), x, run.view_of(g.weights[0])->cols(), so, *run.pool);
    if (!r.ok() || a.act != "auto" || head) return r;
    // auto: per-token dynamic scales where a static one costs more than twice their output error.
    so.static_act = false;
    auto d = search_smoothing(weights_of(g), x, run.view_of(g.weights[0])->cols(), so, *run.pool);
    if (!d.ok()) return d;
    if (r->error <= 2.0 * d->error) return r;
    d->static_act = false;
    return d;
  };
  std::map<std::string, SmoothChoice> pre;
  if (smooth) {
    for (const LinearGroup& g : groups) {
      if (g.weights.empty() || g.fold_rows.empty() || !run.f32.count(g.fold_rows)) continue;
      const int64_t cols = run.view_of(g.weights[0])->cols();
      const TensorView* t = run.view_of(g.fold_rows);
      const std::vector<float>& x = run.capture.rows(run.view_of(g.weights[0])->data);
      if (t->rows() != cols || x.empty()) continue;
      auto ch = search(g, x, true);
      if (!ch.ok()) return ch.status().with_context(g.weights[0]);
      if (!ch->s.empty()) {
        float* p = run.f32.at(g.fold_rows);
        for (int64_t row = 0; row < t->rows(); ++row) {
          for (int64_t c = 0; c < t->cols(); ++c) p[row * t->cols() + c] /= ch->s[row];
        }
      }
      pre[g.weights[0]] = std::move(ch).value();
    }
  }
  for (const LinearGroup& g : groups) {
    if (g.weights.empty()) continue;
    const int64_t cols = run.view_of(g.weights[0])->cols();
    std::vector<float> x;
    if (run.calibrated) {
      x = run.capture.rows(run.view_of(g.weights[0])->data);
      if (x.empty()) return error("no calibration input reached " + g.weights[0]);
    }
    SmoothChoice choice;  // no smoothing, no clipping unless SmoothQuant chooses them
    const bool foldable = !g.norm_w.empty() && run.f32.count(g.norm_w) > 0;
    if (auto it = pre.find(g.weights[0]); it != pre.end()) {
      choice = it->second;
    } else if (smooth || a.act == "auto" || rot.count(g.weights[0])) {
      auto ch = search(g, x, smooth && foldable);
      if (!ch.ok()) return ch.status().with_context(g.weights[0]);
      choice = std::move(ch).value();
    }
    const std::vector<float>& s = choice.s;
    if (!s.empty() && foldable) {
      for (const std::string& norm : {g.norm_w, g.norm_b}) {
        if (norm.empty() || !run.f32.count(norm)) continue;
        float* p = run.f32.at(norm);
        for (int64_t c = 0; c < cols; ++c) p[c] /= s[c];
        run.folded.insert(norm);
      }
    }
    if (!s.empty()) {
      for (const std::string& name : g.weights) {
        float* p = run.f32.at(name);
        const int64_t rows = run.view_of(name)->rows();
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < cols; ++c) p[r * cols + c] *= s[c];
        }
      }
      divide_columns(x, cols, s);
    }
    const auto rit = rot.find(g.weights[0]);
    const float* q = rit != rot.end() && choice.rotated ? rit->second.data() : nullptr;
    const int64_t qm = q != nullptr ? rot_m.at(g.weights[0]) : 0;
    if (q != nullptr) {  // what the int8 rounding sees: x R and W R
      kernels::rotate_rows(q, qm, x.data(), static_cast<int64_t>(x.size()) / cols, cols, x.data());
      for (const std::string& name : g.weights) {
        kernels::rotate_rows(q, qm, run.f32.at(name), run.view_of(name)->rows(), cols, run.f32.at(name));
      }
    }
    float act_scale = 0.0f;
    if (!head && (a.act == "static" || (a.act == "auto" && choice.static_act))) {
      auto sc = static_act_scale(x, choice.act_clip);
      if (!sc.ok()) return sc.status().with_context(g.weights[0]);
      act_scale = *sc;
    }
    std::vector<float> h;
    if (run.w8spec.gptq) {
      HessianAccumulator acc(cols, run.pool);
      LLMOPT_RETURN_IF_ERROR(acc.add(x.data(), static_cast<int64_t>(x.size()) / cols).with_context(g.weights[0]));
      auto hv = acc.hessian();
      if (!hv.ok()) return hv.status().with_context(g.weights[0]);
      h = std::move(hv).value();
    }
    for (const std::string& name : g.weights) {
      if (a.smooth_only) {  // the smoothed f32 weight, nothing rounded
        run.folded.insert(name);
        continue;
      }
      auto r = quantize_i8ch(run.f32.at(name), run.view_of(name)->rows(), cols, run.w8spec, run.w8spec.gptq ? &h : nullptr, run.pool);
      if (!r.ok()) return r.status().with_context(name);
      r->act_scale = act_scale;
      if (q != nullptr) {
        // The working copy (which later layers' calibration runs) computes without rotating its input:
        // it gets the rounded W R turned back, R^T.
        kernels::rotate_rows(q, qm, run.f32.at(name), run.view_of(name)->rows(), cols, run.f32.at(name), true);
        r->rot = rit->second;
        r->rot_m = qm;
      }
      run.i8[name] = std::move(r).value();
      std::string note;
      if (smooth || a.act == "auto" || q != nullptr) {
        char buf[160];
        if (!s.empty()) {
          std::snprintf(buf, sizeof(buf), ", smoothed alpha %.2f", choice.alpha);
        } else {
          std::snprintf(buf, sizeof(buf), ", not smoothed (%s)", foldable || pre.count(g.weights[0])
                                                                  ? "no alpha helps" : "nothing to fold 1/s into");
        }
        note = buf;
        if (act_scale > 0.0f) {
          std::snprintf(buf, sizeof(buf), ", range clip %.1f", choice.act_clip);
          note += buf;
        }
        if (q != nullptr) {
          std::snprintf(buf, sizeof(buf), ", input rotated (Hadamard %lld x random orthogonal %lld)",
                        static_cast<long long>(cols / qm), static_cast<long long>(qm));
          note += buf;
        }
        std::snprintf(buf, sizeof(buf), " (output error %.3g, plain w8a8 %.3g)", choice.error, choice.error_plain);
        note += buf;
      }
      const std::string where =
          head ? std::string("[head]") : "[layer " + std::to_string(il + 1) + "/" + std::to_string(run.n_layer()) + "]";
      std::fprintf(stderr, "%s %s i8_ch %s %s, activations %s%s\n", where.c_str(), name.c_str(),
                   a.method.c_str(), a.granularity.c_str(),
                   act_scale > 0.0f ? ("static (scale " + std::to_string(act_scale) + ")").c_str() : "per token",
                   note.c_str());
    }
    std::fflush(stderr);
  }
  return ok_status();
}

}  // namespace llmopt::cli
