// AWQ's block-output objective (quantize_run.h, awq_block_error): the scale search of a linear group
// ranks each alpha by the error it causes in the output of the module the group feeds, measured by
// running calibration windows through the working model with the candidate weights swapped in.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "cli/quantize_run.h"
#include "core/check.h"
#include "quant/output_error.h"

namespace llmopt::cli {

namespace {

// The weight whose input carries the output of the module that group g feeds, before that module's
// last projection: Q/K/V feed attention (probe: attn_output's input, the heads' outputs), gate/up (GPT-2:
// up) feed the MLP (probe: ffn_down's input). "" for attn_output and ffn_down, their own modules.
std::string probe_weight(const LinearGroup& g, int32_t il) {
  const std::string b = "blk." + std::to_string(il) + ".";
  for (const std::string& n : g.weights) {
    for (const char* s : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_qkv.weight"}) {
      if (n == b + s) return b + "attn_output.weight";
    }
    for (const char* s : {"ffn_gate.weight", "ffn_up.weight"}) {
      if (n == b + s) return b + "ffn_down.weight";
    }
  }
  return "";
}

struct BlockProbe {
  std::vector<std::vector<int32_t>> windows;  // the subset the search runs
  const uint8_t* probe = nullptr;             // the probe weight's data (identifies it to the capture)
  int64_t cols = 0, rows = 0;                 // the probe weight's shape
  std::vector<float> y0;                      // the probe's input with the group unquantized
  std::vector<float> proj;                    // the module's last projection [rows][cols]
  std::vector<float> resid;                   // the residual stream entering block il, window after window
};

// Captures the probe's input; the first pass also records the residual stream entering block il, and
// the later ones start there (the blocks before il do not change between candidates).
class ProbeCapture : public InputCapture {
 public:
  ProbeCapture(int32_t il, BlockProbe& p, bool record) : il_(il), p_(p), record_(record) {}
  void on_block_input(int32_t il, const float* x, int64_t n, int64_t d) override {
    if (record_ && il == il_) p_.resid.insert(p_.resid.end(), x, x + n * d);
  }
  int32_t first_layer() const override { return record_ ? 0 : il_; }
  void load_residual(int32_t, float* x, int64_t n, int64_t d) override {
    const size_t len = static_cast<size_t>(n * d);
    LLMOPT_CHECK_MSG(off_ + len <= p_.resid.size(), "AWQ block probe: more rows than the recorded pass");
    std::copy_n(p_.resid.begin() + static_cast<std::ptrdiff_t>(off_), len, x);
    off_ += len;
  }

 private:
  int32_t il_;
  BlockProbe& p_;
  bool record_;
  size_t off_ = 0;
};

std::vector<float> capture_probe(MethodRun& run, BlockProbe& p, int32_t il, bool record) {
  ProbeCapture cap(il, p, record);
  cap.want(p.probe, il);
  run_calibration(*run.model, p.windows, &cap, *run.pool);
  return std::move(cap.rows(p.probe));
}

}  // namespace

AwqScaleError awq_block_error(MethodRun& run, const LinearGroup& g, int32_t il,
                              const std::vector<float>* probe_col_scales) {
  if (run.windows == nullptr || run.windows->empty()) return nullptr;
  const std::string probe_name = probe_weight(g, il);
  if (probe_name.empty() || run.f32.count(probe_name) == 0) return nullptr;
  const TensorView* pv = run.view_of(probe_name);
  auto p = std::make_shared<BlockProbe>();
  const int64_t n_win = static_cast<int64_t>(run.windows->size());
  const int64_t take = std::min<int64_t>(n_win, kAwqBlockWindows);
  for (int64_t i = 0; i < take; ++i) p->windows.push_back((*run.windows)[static_cast<size_t>(i * n_win / take)]);
  p->probe = pv->data;
  p->rows = pv->rows();
  p->cols = pv->cols();
  const float* w = run.f32.at(probe_name);
  p->proj.assign(w, w + p->rows * p->cols);
  if (probe_col_scales != nullptr && static_cast<int64_t>(probe_col_scales->size()) == p->cols) {
    // ffn_down's 1/s is already folded into ffn_up's rows: the unquantized module is W_down diag(s).
    for (int64_t r = 0; r < p->rows; ++r) {
      for (int64_t c = 0; c < p->cols; ++c) p->proj[r * p->cols + c] *= (*probe_col_scales)[c];
    }
  }
  p->y0 = capture_probe(run, *p, il, /*record=*/true);
  if (p->y0.empty()) return nullptr;
  std::vector<std::string> names = g.weights;
  return [p, names, il, &run](const std::vector<float>& w_eff) -> Result<double> {
    // Swap the candidate weights in, run the windows, swap the originals back.
    std::vector<float> saved;
    size_t off = 0;
    for (const std::string& name : names) {
      const int64_t n = run.view_of(name)->numel();
      if (off + static_cast<size_t>(n) > w_eff.size()) return error("AWQ block probe: weights do not match the group");
      float* dst = run.f32.at(name);
      saved.insert(saved.end(), dst, dst + n);
      std::copy(w_eff.begin() + static_cast<std::ptrdiff_t>(off), w_eff.begin() + static_cast<std::ptrdiff_t>(off + n),
                dst);
      off += static_cast<size_t>(n);
    }
    std::vector<float> y = capture_probe(run, *p, il, /*record=*/false);
    off = 0;
    for (const std::string& name : names) {
      const int64_t n = run.view_of(name)->numel();
      std::copy(saved.begin() + static_cast<std::ptrdiff_t>(off), saved.begin() + static_cast<std::ptrdiff_t>(off + n),
                run.f32.at(name));
      off += static_cast<size_t>(n);
    }
    if (y.size() != p->y0.size()) return error("AWQ block probe: the module's input changed size between passes");
    for (size_t i = 0; i < y.size(); ++i) y[i] -= p->y0[i];
    quant::OutputError meter(y.data(), static_cast<int64_t>(y.size()) / p->cols, p->cols, *run.pool);
    return meter.total(p->proj.data(), p->rows);
  };
}

}  // namespace llmopt::cli
