// The state and steps of `llmopt quantize --method` shared by its files. run_quantize_method
// (quantize_method.cc) checks the flags, builds the F32 working copy and runs the layers in order;
// quantize_layer_grid (quantize_grid.cc) quantizes one layer on a GGUF block grid with RTN, GPTQ or AWQ,
// quantize_layer_w8a8 (quantize_w8a8.cc) to W8A8; quantize_run.cc holds the shared helpers.
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "cli/quantize_method.h"
#include "cli/quantize_w8a8.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "formats/weight_source.h"
#include "model/linear_observer.h"
#include "model/model.h"
#include "quant/gguf_grid.h"

namespace llmopt::cli {

// ---- --method: RTN / GPTQ / AWQ on GGUF block grids ----
//
// Pipeline: every plain-float tensor is copied to F32 (the working copy) and a Model runs on it. Layers
// are quantized in order; before layer i, the calibration windows run through the working model (whose
// layers < i already hold their quantized values) and a LinearObserver records the inputs of layer i's
// linear weights. Each weight is then quantized on its grid, packed into GGUF blocks, and the block
// dequantization of those blocks is written back into the working copy. AWQ's per-input-channel scales s
// are folded exactly: 1/s goes into the norm that produces the input (attn_norm for Q/K/V or the fused
// QKV, ffn_norm for gate/up or up; weight and bias), and W·diag(s) is quantized (grid_quantize_awq: the
// search measures the grid's own values). LLaMA's ffn_down input is silu(gate) * up, linear in up's
// output rows, so its 1/s is folded into ffn_up's rows (searched before the gate/up group is
// quantized). attn_output (and GPT-2's ffn_down, after a GELU) have nothing exact to fold into, so AWQ
// uses s = 1 there and searches only the per-group clipping.
// token_embd, output and vectors stay in the source's type (norms folded by AWQ are written as F32).

// Records the input rows of the weights it was told about (keyed by the weight's data pointer). Told
// the block of every weight it wants, it lets the forward pass stop after the last of them.
class InputCapture : public LinearObserver {
 public:
  void want(const uint8_t* weight) { want(weight, INT32_MAX); }
  void want(const uint8_t* weight, int32_t layer) {
    rows_[weight];
    last_layer_ = std::max(last_layer_, layer);
  }
  std::vector<float>& rows(const uint8_t* weight) { return rows_[weight]; }
  void clear() {
    rows_.clear();
    last_layer_ = -1;
  }
  bool needs_layer(int32_t il) const override { return il <= last_layer_; }
  void on_linear_input(const TensorView& w, const float* x, int64_t n) override {
    auto it = rows_.find(w.data);
    if (it == rows_.end()) return;
    it->second.insert(it->second.end(), x, x + n * w.cols());
  }

 private:
  std::map<const uint8_t*, std::vector<float>> rows_;
  int32_t last_layer_ = -1;
};

struct LinearGroup {
  std::vector<std::string> weights;  // share one input
  std::string norm_w, norm_b;        // the norm producing that input ("" when none)
  // A weight whose output rows enter this input linearly (LLaMA: ffn_up, through silu(gate) * up), so
  // AWQ can fold 1/s into its rows instead of into a norm.
  std::string fold_rows;
};

// The linear groups of layer il, in forward order.
std::vector<LinearGroup> layer_groups(Arch arch, int32_t il);
inline bool is_float_type(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// An F32 copy of every plain-float tensor of src (the others shared as they are), with f32 (when given)
// receiving the copies; the copy keeps src alive.
std::shared_ptr<MemoryWeightSource> f32_copy_of(std::shared_ptr<const WeightSource> src,
                                                std::map<std::string, float*>* f32);
// Runs every calibration window through m, handing the linear inputs to obs.
// With all_logits the head runs on every position too (so that its input is observed).
void run_calibration(const Model& m, const std::vector<std::vector<int32_t>>& windows, LinearObserver* obs,
                     ThreadPool& pool, bool all_logits = false);
// At most max_rows of the rows of x (a fixed-seed uniform sample, in order), for AWQ's search.
std::vector<float> subsample_rows(const std::vector<float>& x, int64_t cols, int64_t max_rows);

// The flags of one run, checked and resolved (quantize_args.cc): an error names the flag at fault.
struct MethodPlan {
  MethodArgs a;              // with the defaults filled in (bits, granularity, act)
  bool w8a8 = false;         // int8 weights as i8_ch and int8 activations at run time
  bool calibrated = false;   // needs --calib
  quant::GridSpec gspec;
  W8A8Spec w8spec;
  std::optional<DType> embed_type;
  std::optional<std::regex> keep;
};
Result<MethodPlan> plan_method(const MethodArgs& args, const std::string& keep_re);

// One run's state: the F32 working copy (a Model runs on it; quantized weights are written back into it
// as their dequantized values) and the results.
struct MethodRun {
  explicit MethodRun(const MethodArgs& args) : a(args) {}
  const MethodArgs& a;
  std::shared_ptr<MemoryWeightSource> work;
  std::map<std::string, float*> f32;  // the working copy's plain-float tensors
  const Model* model = nullptr;       // running on `work`
  ThreadPool* pool = nullptr;
  bool calibrated = false;
  quant::GridSpec gspec;
  W8A8Spec w8spec;
  DType qtype = DType::kQ4_0;  // the block type grid weights are written as
  std::string gran;            // "channel" or "gN", for the progress lines
  InputCapture capture;
  const std::vector<std::vector<int32_t>>* windows = nullptr;  // the calibration windows
  // GPTQ's asymmetric target: the same calibration windows through the unquantized model, whose
  // inputs of each weight are what the quantized layer's outputs are compared against.
  std::shared_ptr<MemoryWeightSource> ref;
  const Model* ref_model = nullptr;
  InputCapture ref_capture;

  std::map<std::string, std::vector<uint8_t>> packed;  // quantized weights, as blocks of qtype
  std::map<std::string, quant::GridTensor> grids;       // the same as grids, when --tune-steps will tune them
  std::map<std::string, I8ChWeight> i8;                 // W8A8 weights
  std::set<std::string> as_f16;                         // kept (--keep) or not fitting the grid
  std::set<std::string> folded;                         // norms (and smoothed weights) changed in place

  const TensorView* view_of(const std::string& name) const { return work->find(name); }
  int32_t n_layer() const { return model->config().n_layer; }
  // Rounds a working-copy tensor to f16 values and marks it to be written as f16.
  void to_f16_in_place(const std::string& name);
  // Packs a quantized weight and writes its block dequantization back into the working copy.
  void store(const std::string& name, const quant::GridTensor& t);
};

// AWQ's block-output objective (quantize_awq_block.cc, `--awq-objective block`): for the group feeding
// attention (Q/K/V) or the MLP (gate/up), an error of candidate effective weights [all rows of the
// group][cols] = ||(Y - Y0) P^T||^2 on up to kAwqBlockWindows calibration windows (each candidate's pass
// starts at block il from the residual stream recorded by the first pass), where Y is the input
// of the module's last projection P (attn_output, ffn_down) with the candidate weights in the working
// model and Y0 with the group as it is now: the module's output error, as the AWQ paper searches.
// probe_col_scales (may be null): an AWQ scale already folded into P's input (ffn_down's s). Returns
// an empty function for groups that are their own module (attn_output, ffn_down).
using AwqScaleError = std::function<Result<double>(const std::vector<float>&)>;
inline constexpr int64_t kAwqBlockWindows = 32;
AwqScaleError awq_block_error(MethodRun& run, const LinearGroup& g, int32_t il,
                              const std::vector<float>* probe_col_scales);

// One layer's groups (weights already filtered; their inputs captured when calibrated).
Status quantize_layer_grid(MethodRun& run, const std::vector<LinearGroup>& groups, int32_t il);
// il = -1: the head (activations always per token; progress lines say "[head]").
Status quantize_layer_w8a8(MethodRun& run, const std::vector<LinearGroup>& groups, int32_t il);
// --tune-steps (quantize_tune.cc): trains the group parameters of every grid in run.grids against the
// unquantized model (src) on the calibration windows (train/qtune.h) and stores the tuned grids.
Status tune_grids(MethodRun& run, std::shared_ptr<const WeightSource> src,
                  const std::vector<std::vector<int32_t>>& windows);
// The output file (quantize_output.cc): quantized weights as blocks of run.qtype or i8_ch, F16 fallbacks
// and folded norms from the working copy, the rest as in src (token_embd / output as embed_type when
// given); how receives the one-line description of the scheme.
Status write_method_output(MethodRun& run, const WeightSource& src, const std::string& output,
                           const std::optional<std::regex>& keep, const std::optional<DType>& embed_type,
                           bool w8a8, ThreadPool& pool, std::string* how);

}  // namespace llmopt::cli
