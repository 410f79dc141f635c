// The training loop's single step, evaluation and checkpointing (see trainer.h).
#include "train/trainer.h"

#include <algorithm>

#include "train/data.h"

namespace llmopt::train {
namespace {
// The data RNG's seed is derived from the run seed so data order and initialization are independent.
uint64_t data_seed(uint64_t seed) { return Rng(seed ^ 0x5DEECE66DA3B1F27ull).next_u64(); }
}  // namespace

Result<std::unique_ptr<Trainer>> Trainer::create(const TrainOptions& opts_in, std::vector<int32_t> train,
                                                 std::vector<int32_t> heldout, ThreadPool& pool) {
  TrainOptions opts = opts_in;
  LLMOPT_RETURN_IF_ERROR(validate_train_config(opts.config));
  const int64_t T = opts.config.n_ctx_train;
  if (opts.batch <= 0) return error("batch size must be positive");
  if (opts.steps <= 0) return error("number of steps must be positive");
  if (!(opts.lr > 0.0f)) return error("learning rate must be positive");
  if (opts.warmup < 0) return error("warm-up steps must not be negative");
  if (static_cast<int64_t>(train.size()) < T + 1) {
    return error("the training text has " + std::to_string(train.size()) +
                 " tokens; a window needs ctx + 1 = " + std::to_string(T + 1));
  }
  for (const auto* part : {&train, &heldout}) {
    for (int32_t id : *part) {
      if (id < 0 || id >= opts.config.n_vocab)
        return error("token id " + std::to_string(id) + " outside the vocabulary");
    }
  }
  const ParamLayout layout = make_param_layout(opts.config);
  return std::unique_ptr<Trainer>(new Trainer(opts, layout, std::move(train), std::move(heldout), pool));
}

Trainer::Trainer(const TrainOptions& opts, const ParamLayout& layout, std::vector<int32_t> train,
                 std::vector<int32_t> heldout, ThreadPool& pool)
    : opts_(opts),
      layout_(layout),
      train_(std::move(train)),
      heldout_(std::move(heldout)),
      pool_(pool),
      model_(layout),
      rng_(data_seed(opts.seed)) {
  state_.params = init_params(layout_, opts_.seed);
  state_.opt.m.assign(layout_.total, 0.0f);
  state_.opt.v.assign(layout_.total, 0.0f);
  grad_.resize(layout_.total);
  batch_.resize(static_cast<size_t>(opts_.batch * (opts_.config.n_ctx_train + 1)));
}

StepResult Trainer::step() {
  const int64_t B = opts_.batch, T = opts_.config.n_ctx_train;
  sample_windows(train_, B, T, rng_, batch_.data());
  StepResult r;
  r.loss = model_.run(state_.params.data(), batch_.data(), B, T, grad_.data(), pool_);
  r.grad_norm = clip_grad_norm(grad_.data(), grad_.size(), opts_.clip);
  const LrSchedule sched{opts_.lr, opts_.warmup, opts_.steps, opts_.min_lr_ratio};
  r.lr = sched.at(state_.step);
  adamw_update(layout_, opts_.adamw, r.lr, grad_.data(), state_.params.data(), state_.opt);
  ++state_.step;
  return r;
}

std::optional<double> Trainer::heldout_loss() {
  const int64_t T = opts_.config.n_ctx_train;
  const int64_t n = count_eval_windows(heldout_.size(), T, opts_.eval_max_windows);
  if (n == 0) return std::nullopt;
  std::vector<int32_t> buf(static_cast<size_t>(opts_.batch * (T + 1)));
  double sum = 0.0;
  for (int64_t w0 = 0; w0 < n; w0 += opts_.batch) {
    const int64_t b = std::min(opts_.batch, n - w0);
    for (int64_t i = 0; i < b; ++i) eval_window(heldout_, T, w0 + i, buf.data() + i * (T + 1));
    sum += model_.run(state_.params.data(), buf.data(), b, T, nullptr, pool_) * static_cast<double>(b);
  }
  return sum / static_cast<double>(n);
}

Status Trainer::save(const std::string& path) const {
  TrainState st = state_;
  st.rng_state = rng_.state();
  st.batch = opts_.batch;
  return save_checkpoint(path, layout_, st);
}

Status Trainer::resume(const std::string& path) {
  LLMOPT_ASSIGN_OR_RETURN(TrainState st, load_checkpoint(path, layout_));
  if (st.batch != opts_.batch) {
    return error(path + ": checkpoint was made with batch " + std::to_string(st.batch) + ", this run has " +
                 std::to_string(opts_.batch));
  }
  rng_.set_state(st.rng_state);
  state_ = std::move(st);
  return ok_status();
}

}  // namespace llmopt::train
