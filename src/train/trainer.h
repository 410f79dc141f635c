// Trainer: one FP32 training run: parameters, AdamW state, the data stream and its RNG. Each step()
// draws B random windows of T + 1 tokens, runs forward + backward, clips the gradient norm and
// applies AdamW at the scheduled learning rate. Everything follows from the seed, so two runs with the
// same options and data produce the same bits, and a run resumed from a checkpoint continues as if it
// had never stopped (results do not depend on the thread count either).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "train/checkpoint.h"
#include "train/distill_data.h"
#include "train/optimizer.h"
#include "train/params.h"
#include "train/rng.h"
#include "train/transformer.h"

namespace llmopt::train {

struct TrainOptions {
  ModelConfig config;         // n_ctx_train is the training sequence length T
  int64_t batch = 8;          // B sequences per step
  int64_t steps = 100;        // total optimizer steps of the run (for the schedule)
  float lr = 1e-3f;           // peak learning rate
  int64_t warmup = 0;         // linear warm-up steps
  float min_lr_ratio = 0.1f;  // cosine decays to this fraction of lr
  AdamWConfig adamw;
  double clip = 1.0;  // global gradient-norm clip (<= 0: off)
  uint64_t seed = 1;  // initialization and data order
  int64_t eval_max_windows = 32;
  // Distillation (create_distill only): weight of the teacher's soft targets and their temperature.
  double distill_alpha = 1.0;
  double distill_temp = 1.0;
};

// Held-out evaluation: the mean next-token cross-entropy against the actual tokens (comparable
// between distilled and plain runs) and, for distillation data, how often the student's top-1 token
// equals the teacher's on the positions the teacher predicted.
struct HeldoutEval {
  double loss = 0.0;
  int64_t n_teacher = 0;      // held-out positions with the teacher's distribution
  int64_t n_top1_agree = 0;   // of those, where argmax(student) == argmax(teacher)
  double top1_agreement() const { return n_teacher > 0 ? static_cast<double>(n_top1_agree) / n_teacher : 0.0; }
};

struct StepResult {
  double loss = 0.0;       // mean cross-entropy of the step's batch (before the update)
  double grad_norm = 0.0;  // before clipping
  float lr = 0.0f;
};

class Trainer {
 public:
  // Validates the options; `train` must hold at least T + 1 tokens (heldout may be empty).
  static Result<std::unique_ptr<Trainer>> create(const TrainOptions& opts, std::vector<int32_t> train,
                                                 std::vector<int32_t> heldout, ThreadPool& pool);

  // Distillation: `train` and `heldout` carry the teacher's top-k targets (same k and vocabulary as
  // the config); each step learns the distill_cross_entropy of opts.distill_alpha / distill_temp.
  static Result<std::unique_ptr<Trainer>> create_distill(const TrainOptions& opts, DistillSet train,
                                                         DistillSet heldout, ThreadPool& pool);

  StepResult step();
  // Mean loss over up to eval_max_windows fixed held-out windows; nullopt when the held-out part is
  // shorter than T + 1 tokens. Draws no random numbers.
  std::optional<double> heldout_loss();
  std::optional<HeldoutEval> heldout_eval();
  // Held-out top-1 agreement with the teacher of always predicting the most frequent training token
  // (the unigram baseline), over the positions heldout_eval() scores; empty without distillation data.
  HeldoutEval unigram_baseline() const;
  bool distilling() const { return !soft_train_.tokens.empty(); }

  Status save(const std::string& path) const;
  // Replaces parameters, moments, step and RNG state with a checkpoint's.
  Status resume(const std::string& path);

  int64_t step_index() const { return state_.step; }
  const std::vector<float>& params() const { return state_.params; }
  const ParamLayout& layout() const { return layout_; }
  const TrainOptions& options() const { return opts_; }
  int64_t tokens_per_step() const { return opts_.batch * opts_.config.n_ctx_train; }

 private:
  Trainer(const TrainOptions& opts, const ParamLayout& layout, std::vector<int32_t> train,
          std::vector<int32_t> heldout, ThreadPool& pool);

  TrainOptions opts_;
  ParamLayout layout_;
  std::vector<int32_t> train_, heldout_;
  ThreadPool& pool_;
  Transformer<float> model_;
  TrainState state_;
  Rng rng_;
  std::vector<float> grad_;
  std::vector<int32_t> batch_;
  DistillSet soft_train_, soft_heldout_;  // empty: plain training
  std::vector<int32_t> batch_ids_;
  std::vector<float> batch_probs_;
};

}  // namespace llmopt::train
