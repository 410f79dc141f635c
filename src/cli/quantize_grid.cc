// The grid part of `llmopt quantize --method` (quantize_run.h): one layer's linear weights quantized
// with RTN, GPTQ or AWQ on a GGUF block grid, from the inputs captured for them.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/quantize_run.h"
#include "quant/gguf_grid.h"
#include "quant/hessian.h"
#include "quant/gptq_target.h"

namespace llmopt::cli {

using namespace quant;

Status quantize_layer_grid(MethodRun& run, const std::vector<LinearGroup>& groups, int32_t il) {
  const MethodArgs& a = run.a;
  // AWQ's search over the rows of all weights of a group at once (one s for their shared input).
  auto awq_search = [&](const LinearGroup& g, bool scale_search,
                        const std::vector<float>* probe_scales) -> Result<GridAwqResult> {
    const int64_t cols = run.view_of(g.weights[0])->cols();
    int64_t rows_total = 0;
    for (const std::string& name : g.weights) rows_total += run.view_of(name)->rows();
    std::vector<float> wcat;
    wcat.reserve(static_cast<size_t>(rows_total * cols));
    for (const std::string& name : g.weights) {
      const float* p = run.f32.at(name);
      wcat.insert(wcat.end(), p, p + run.view_of(name)->numel());
    }
    const std::vector<float> xs = subsample_rows(run.capture.rows(run.view_of(g.weights[0])->data), cols, 1024);
    GridAwqOptions ao;
    ao.pool = run.pool;
    ao.scale_search = scale_search;
    if (scale_search && a.awq_objective == "block") ao.scale_error = awq_block_error(run, g, il, probe_scales);
    return grid_quantize_awq(wcat.data(), rows_total, cols, xs.data(), static_cast<int64_t>(xs.size()) / cols,
                             run.gspec, ao);
  };
  // Groups that fold 1/s into another weight's rows are searched first, before that weight is
  // quantized (the calibration inputs are those of the pass above either way).
  std::map<std::string, GridAwqResult> awq_done;
  if (a.method == "awq") {
    for (const LinearGroup& g : groups) {
      if (g.weights.empty() || g.fold_rows.empty()) continue;
      bool target_quantized = false;
      for (const LinearGroup& o : groups) {
        for (const std::string& n : o.weights) target_quantized |= n == g.fold_rows;
      }
      if (!target_quantized || run.capture.rows(run.view_of(g.weights[0])->data).empty()) continue;
      auto r = awq_search(g, true, nullptr);
      if (!r.ok()) return r.status().with_context(g.weights[0]);
      const TensorView* t = run.view_of(g.fold_rows);
      if (t->rows() != static_cast<int64_t>(r->scales.size())) continue;  // not a row-for-input match
      float* p = run.f32.at(g.fold_rows);
      for (int64_t row = 0; row < t->rows(); ++row) {
        for (int64_t c = 0; c < t->cols(); ++c) p[row * t->cols() + c] /= r->scales[row];
      }
      awq_done[g.weights[0]] = std::move(r).value();
    }
  }
  for (const LinearGroup& g : groups) {
    if (g.weights.empty()) continue;
    const int64_t cols = run.view_of(g.weights[0])->cols();
    const std::vector<float>* x = run.calibrated ? &run.capture.rows(run.view_of(g.weights[0])->data) : nullptr;
    const int64_t n_x = x ? static_cast<int64_t>(x->size()) / cols : 0;
    if (run.calibrated && n_x == 0) return error("no calibration input reached " + g.weights[0]);
    if (a.method == "gptq") {
      HessianAccumulator acc(cols, run.pool);
      Status st = acc.add(x->data(), n_x);
      if (!st.ok()) return st.with_context(g.weights[0]);
      auto h = acc.hessian();
      if (!h.ok()) return h.status().with_context(g.weights[0]);
      // The asymmetric target (quant/gptq_target.h): the unquantized model's outputs on its own inputs.
      std::vector<float> target;
      if (run.ref_model != nullptr) {
        const std::vector<float>& xr = run.ref_capture.rows(run.ref->find(g.weights[0])->data);
        if (xr.size() != x->size()) {
          return error("calibration inputs of the unquantized model differ in count for " + g.weights[0]);
        }
        auto m = gptq_target_map(x->data(), xr.data(), n_x, cols, *h, GridGptqOptions{}.damp_percent, run.pool);
        if (!m.ok()) return m.status().with_context(g.weights[0]);
        target = std::move(m).value();
      }
      for (const std::string& name : g.weights) {
        const TensorView* v = run.view_of(name);
        if (!target.empty()) apply_target_map(run.f32.at(name), v->rows(), cols, target, run.pool);
        GridGptqOptions go;
        go.pool = run.pool;
        go.act_order = a.act_order;
        go.scale_search = a.scale_search;
        auto t = grid_quantize_gptq(run.f32.at(name), v->rows(), cols, *h, run.gspec, go);
        if (!t.ok()) return t.status().with_context(name);
        run.store(name, *t);
        std::fprintf(stderr, "[layer %d/%d] %s %s gptq %s%s%s%s\n", il + 1, run.n_layer(), name.c_str(),
                     dtype_name(run.qtype), run.gran.c_str(), a.act_order ? " act-order" : "",
                     go.scale_search ? ", scale search" : "",
                     run.ref_model ? ", target: the unquantized model's outputs" : "");
      }
    } else if (a.method == "awq") {
      // One scale vector for all weights that share the input: search on their rows together. 1/s is
      // folded into the norm producing the input, or (ffn_down) into ffn_up's rows above; with
      // neither (attn_output), s = 1 and only the clipping is searched.
      const bool foldable = !g.norm_w.empty() && run.f32.count(g.norm_w) > 0;
      auto pre = awq_done.find(g.weights[0]);
      // The MLP's last projection may already carry ffn_down's scale (folded into ffn_up's rows).
      const std::string down = "blk." + std::to_string(il) + ".ffn_down.weight";
      const auto down_done = awq_done.find(down);
      const std::vector<float>* probe_scales = down_done != awq_done.end() ? &down_done->second.scales : nullptr;
      Result<GridAwqResult> r = pre != awq_done.end() ? Result<GridAwqResult>(std::move(pre->second))
                                                      : awq_search(g, foldable, probe_scales);
      if (!r.ok()) return r.status().with_context(g.weights[0]);
      const bool scaled = foldable || pre != awq_done.end();
      const GridTensor& qt = r->quantized;
      const int64_t gpr = qt.groups_per_row();
      int64_t row0 = 0;
      for (const std::string& name : g.weights) {
        const int64_t rows = run.view_of(name)->rows();
        GridTensor part;
        part.spec = run.gspec;
        part.rows = rows;
        part.cols = cols;
        part.codes.assign(qt.codes.begin() + row0 * cols, qt.codes.begin() + (row0 + rows) * cols);
        part.params.assign(qt.params.begin() + row0 * gpr, qt.params.begin() + (row0 + rows) * gpr);
        run.store(name, part);
        row0 += rows;
        std::fprintf(stderr, "[layer %d/%d] %s %s awq %s alpha %.2f%s (%s error %.3g, rtn %.3g)\n", il + 1,
                     run.n_layer(), name.c_str(), dtype_name(run.qtype), run.gran.c_str(), r->alpha,
                     scaled ? "" : " s=1 (nothing to fold 1/s into)",
                     r->by_scale_error ? "block output" : "output", r->output_error, r->rtn_error);
      }
      // The input is divided by s: fold 1/s into the norm's weight (and bias).
      if (foldable) {
        const std::vector<float>& s = r->scales;
        for (const std::string& norm : {g.norm_w, g.norm_b}) {
          if (norm.empty() || !run.f32.count(norm)) continue;
          float* p = run.f32.at(norm);
          for (int64_t c = 0; c < cols; ++c) p[c] /= s[c];
          run.folded.insert(norm);
        }
      }
    } else {
      const char* how = "rtn";
      for (const std::string& name : g.weights) {
        const TensorView* v = run.view_of(name);
        auto t = grid_quantize_rtn(run.f32.at(name), v->rows(), cols, run.gspec);
        if (!t.ok()) return t.status().with_context(name);
        run.store(name, *t);
        std::fprintf(stderr, "[layer %d/%d] %s %s %s %s\n", il + 1, run.n_layer(), name.c_str(), dtype_name(run.qtype),
                     how, run.gran.c_str());
      }
    }
    std::fflush(stderr);
  }
  return ok_status();
}

}  // namespace llmopt::cli
