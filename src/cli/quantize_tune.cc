// `llmopt quantize --tune-steps N` (quantize_run.h): the quantized model's grids tuned end to end
// against the unquantized model (train/qtune.h), through the training forward and backward pass.
#include <cstdio>

#include "cli/quantize_run.h"
#include "train/params.h"
#include "train/qtune.h"

namespace llmopt::cli {

Status tune_grids(MethodRun& run, std::shared_ptr<const WeightSource> src,
                  const std::vector<std::vector<int32_t>>& windows) {
  using namespace train;
  ModelConfig cfg = run.model->config();
  Status ok = validate_train_config(cfg);
  if (!ok.ok()) return error("--tune-steps needs a model the training pass supports: " + ok.message());
  if (run.grids.empty()) return error("--tune-steps: no weight was quantized on a grid, nothing to tune");
  const ParamLayout layout = make_param_layout(cfg);

  // The teacher from the input file, the student from the working copy (quantized weights, folded
  // norms, f16 fallbacks), both in the training layout.
  std::map<std::string, float*> original;
  auto teacher_src = f32_copy_of(src, &original);
  std::vector<float> teacher(layout.total), student(layout.total);
  std::vector<TunedWeight> tuned;
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    const ParamTensor& t = layout.tensors[i];
    auto o = original.find(t.name);
    auto w = run.f32.find(t.name);
    if (o == original.end() || w == run.f32.end()) {
      return error("--tune-steps: the model has no float tensor '" + t.name + "' that training expects");
    }
    if (teacher_src->find(t.name)->numel() != t.numel) {
      return error("--tune-steps: tensor '" + t.name + "' has an unexpected shape");
    }
    std::copy(o->second, o->second + t.numel, teacher.begin() + static_cast<std::ptrdiff_t>(t.offset));
    std::copy(w->second, w->second + t.numel, student.begin() + static_cast<std::ptrdiff_t>(t.offset));
    auto g = run.grids.find(t.name);
    if (g != run.grids.end()) tuned.push_back({static_cast<int>(i), &g->second});
  }
  if (tuned.size() != run.grids.size()) return error("--tune-steps: a quantized weight is not in the training layout");

  QTuneOptions opt;
  opt.steps = run.a.tune_steps;
  opt.lr = run.a.tune_lr;
  opt.batch = run.a.tune_batch;
  opt.codes = run.a.tune_codes;
  opt.pool = run.pool;
  opt.holdout = run.a.tune_holdout;
  if (opt.holdout > 0 && static_cast<size_t>(opt.holdout) >= windows.size()) {
    return error("--tune-holdout " + std::to_string(opt.holdout) + " leaves none of the " +
                 std::to_string(windows.size()) + " calibration windows to train on");
  }
  opt.on_validation = [](int step, int steps, double kl, bool best) {
    std::fprintf(stderr, "[tune] step %d/%d: KL on the held-out windows %.6f%s\n", step, steps, kl,
                 best ? " (lowest so far)" : "");
    std::fflush(stderr);
  };
  opt.progress = [](int step, int steps, double kl) {
    std::fprintf(stderr, "[tune] step %d/%d: KL on this batch %.6f\n", step, steps, kl);
    std::fflush(stderr);
  };
  std::fprintf(stderr, "[tune] %zu weights, %d steps of %d windows, peak lr %g\n", tuned.size(), opt.steps,
               opt.batch, static_cast<double>(opt.lr));
  auto rep = tune_grid_params(layout, teacher, student, tuned, windows, opt);
  if (!rep.ok()) return rep.status().with_context("--tune-steps");
  if (opt.holdout > 0) {
    std::fprintf(stderr, "[tune] mean KL on the %d held-out windows: %.6f -> %.6f (%s)\n", opt.holdout,
                 rep->held_out_before, rep->held_out_after,
                 rep->kept ? ("kept, step " + std::to_string(rep->best_step)).c_str()
                           : "never lower: the untuned parameters are kept");
  }
  std::fprintf(stderr, "[tune] mean KL on the %zu %s windows: %.6f -> %.6f (%s)\n",
               windows.size() - static_cast<size_t>(opt.holdout), opt.holdout > 0 ? "training" : "calibration",
               rep->kl_before, rep->kl_after,
               rep->kept ? "kept" : (opt.holdout > 0 ? "not kept" : "higher: the untuned parameters are kept"));
  if (rep->kept) {
    for (auto& [name, grid] : run.grids) run.store(name, grid);
  }
  return ok_status();
}

}  // namespace llmopt::cli
