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

Result<std::unique_ptr<Trainer>> Trainer::create_distill(const TrainOptions& opts, DistillSet train,
                                                         DistillSet heldout, ThreadPool& pool) {
  if (train.k < 2) return error("distillation data needs top-k >= 2");
  if (train.n_vocab != opts.config.n_vocab) {
    return error("distillation data has a vocabulary of " + std::to_string(train.n_vocab) + ", the student " +
                 std::to_string(opts.config.n_vocab));
  }
  if (!heldout.tokens.empty() && (heldout.k != train.k || heldout.n_vocab != train.n_vocab))
    return error("held-out distillation data differs in top-k or vocabulary");
  if (!(opts.distill_alpha >= 0.0 && opts.distill_alpha <= 1.0)) return error("distillation alpha must be in [0, 1]");
  if (!(opts.distill_temp > 0.0)) return error("distillation temperature must be positive");
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<Trainer> t, create(opts, train.tokens, heldout.tokens, pool));
  t->soft_train_ = std::move(train);
  t->soft_heldout_ = std::move(heldout);
  const size_t rows = static_cast<size_t>(opts.batch * opts.config.n_ctx_train * t->soft_train_.k);
  t->batch_ids_.resize(rows);
  t->batch_probs_.resize(rows);
  return t;
}

namespace {
// Copies the k-entry target rows [start, start + T) of `set` into ids/probs at row offset `row0`.
void gather_rows(const DistillSet& set, size_t start, int64_t T, int64_t row0, int32_t* ids, float* probs) {
  const size_t k = static_cast<size_t>(set.k);
  std::copy_n(set.ids.begin() + static_cast<std::ptrdiff_t>(start * k), T * k, ids + row0 * k);
  std::copy_n(set.probs.begin() + static_cast<std::ptrdiff_t>(start * k), T * k, probs + row0 * k);
}
}  // namespace

StepResult Trainer::step() {
  const int64_t B = opts_.batch, T = opts_.config.n_ctx_train;
  StepResult r;
  if (distilling()) {
    std::vector<size_t> starts(static_cast<size_t>(B));
    sample_window_starts(train_.size(), B, T, rng_, starts.data());
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(train_.begin() + static_cast<std::ptrdiff_t>(starts[b]), T + 1, batch_.data() + b * (T + 1));
      gather_rows(soft_train_, starts[b], T, b * T, batch_ids_.data(), batch_probs_.data());
    }
    const SoftTargets soft{soft_train_.k, batch_ids_.data(), batch_probs_.data(), opts_.distill_alpha,
                           opts_.distill_temp};
    r.loss = model_.run(state_.params.data(), batch_.data(), B, T, grad_.data(), pool_, &soft);
  } else {
    sample_windows(train_, B, T, rng_, batch_.data());
    r.loss = model_.run(state_.params.data(), batch_.data(), B, T, grad_.data(), pool_);
  }
  r.grad_norm = clip_grad_norm(grad_.data(), grad_.size(), opts_.clip);
  const LrSchedule sched{opts_.lr, opts_.warmup, opts_.steps, opts_.min_lr_ratio};
  r.lr = sched.at(state_.step);
  adamw_update(layout_, opts_.adamw, r.lr, grad_.data(), state_.params.data(), state_.opt);
  ++state_.step;
  return r;
}

std::optional<double> Trainer::heldout_loss() {
  auto ev = heldout_eval();
  if (!ev) return std::nullopt;
  return ev->loss;
}

std::optional<HeldoutEval> Trainer::heldout_eval() {
  const int64_t T = opts_.config.n_ctx_train, V = opts_.config.n_vocab;
  const int64_t n = count_eval_windows(heldout_.size(), T, opts_.eval_max_windows);
  if (n == 0) return std::nullopt;
  std::vector<int32_t> buf(static_cast<size_t>(opts_.batch * (T + 1)));
  const bool soft = distilling() && !soft_heldout_.tokens.empty();
  const size_t k = static_cast<size_t>(soft_heldout_.k);
  HeldoutEval ev;
  double sum = 0.0;
  for (int64_t w0 = 0; w0 < n; w0 += opts_.batch) {
    const int64_t b = std::min(opts_.batch, n - w0);
    for (int64_t i = 0; i < b; ++i) eval_window(heldout_, T, w0 + i, buf.data() + i * (T + 1));
    sum += model_.run(state_.params.data(), buf.data(), b, T, nullptr, pool_) * static_cast<double>(b);
    if (!soft) continue;
    const std::vector<float>& logits = model_.logits();
    for (int64_t i = 0; i < b; ++i) {
      for (int64_t t = 0; t < T; ++t) {
        const size_t row = static_cast<size_t>((w0 + i) * T + t);  // eval windows start at index * T
        if (!soft_heldout_.is_soft(row)) continue;
        const float* l = logits.data() + (i * T + t) * V;
        ++ev.n_teacher;
        ev.n_top1_agree += (std::max_element(l, l + V) - l) == soft_heldout_.ids[row * k] ? 1 : 0;
      }
    }
  }
  ev.loss = sum / static_cast<double>(n);
  return ev;
}

HeldoutEval Trainer::unigram_baseline() const {
  HeldoutEval ev;
  if (!distilling()) return ev;
  std::vector<int64_t> counts(static_cast<size_t>(opts_.config.n_vocab), 0);
  for (int32_t t : train_) ++counts[static_cast<size_t>(t)];
  const int32_t mode = static_cast<int32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  // The same rows heldout_eval() scores: the first T of each evaluation window.
  const size_t k = static_cast<size_t>(soft_heldout_.k);
  const int64_t T = opts_.config.n_ctx_train;
  const int64_t n_rows = count_eval_windows(heldout_.size(), T, opts_.eval_max_windows) * T;
  for (size_t row = 0; row < static_cast<size_t>(n_rows); ++row) {
    if (!soft_heldout_.is_soft(row)) continue;
    ++ev.n_teacher;
    ev.n_top1_agree += soft_heldout_.ids[row * k] == mode ? 1 : 0;
  }
  return ev;
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
