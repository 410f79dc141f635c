// Comparing a base model with variants of it (usually quantized copies) on one text: size, bits per
// weight, perplexity (llama.cpp's chunk protocol, as `llmopt perplexity`), mean KL divergence
// KL(P_base || P_variant) and top-1 agreement over every scored position, and optionally pp/tg
// tokens/s. The chunks are run model by model one chunk at a time, so only two logits buffers are
// held whatever the vocabulary. This file computes and formats; printing is the front end's job.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/perplexity.h"

namespace llmopt {

struct EvalModel {
  const Model* model = nullptr;
  std::string path;  // as given (for the name and the size on disk)
};

struct EvalOptions {
  int32_t n_ctx = 128;
  int32_t n_chunks = -1;  // at most this many chunks (-1: all)
  int32_t threads = 1;
  bool speed = true;      // measure pp/tg tokens/s with runtime/bench
  int32_t n_prompt = 128; // clipped to the model's context
  int32_t n_gen = 32;     // clipped to the model's context - 1
  int32_t repetitions = 3;
};

struct EvalRow {
  std::string name;            // the path as given
  uint64_t file_bytes = 0;     // bytes on disk (a directory: the sum of its files)
  double ratio = 0.0;          // base file bytes / this file's bytes
  uint64_t weight_bytes = 0;   // Model::weight_bytes
  uint64_t n_weights = 0;      // elements of the same tensors
  double bpw = 0.0;            // weight_bytes * 8 / n_weights
  PerplexityResult ppl;
  double dppl_pct = 0.0;       // (ppl / base ppl - 1) * 100
  double kld = 0.0;            // mean KL(P_base || P_this) in nats over the scored positions
  double same_top1_pct = 0.0;  // % of scored positions where both argmaxes agree
  // Paired standard errors against the base, over the scored positions (as llama.cpp's
  // --kl-divergence; positions are taken as independent, so these are lower bounds):
  //  - ln(ppl / base ppl) is the mean of d = NLL_this - NLL_base per position; its standard error
  //    s_d / sqrt(n - 1) carries to Δppl as 100 * (ppl / base ppl) * that;
  //  - KLD: the standard deviation of the per-position KL / sqrt(n - 1);
  //  - same top-1: the binomial 100 * sqrt(p (1 - p) / (n - 1)).
  // A difference between two variants' Δppl is real when it is several of these apart.
  double dppl_pct_stderr = 0.0;
  double kld_stderr = 0.0;
  double same_top1_stderr = 0.0;  // percentage points
  int64_t n_positions = 0;     // scored positions compared
  bool has_speed = false;
  int32_t n_prompt = 0, n_gen = 0;
  double pp_tps = 0.0, tg_tps = 0.0;  // medians over the repetitions
};

// Called after each chunk has run on every model: (chunks done, chunks), and with a line before each
// speed measurement.
struct EvalProgress {
  std::function<void(int32_t done, int32_t n_chunks)> on_chunk;
  std::function<void(const std::string&)> on_line;
};

// models[0] is the base. All models must share n_vocab and tokenize the text to the same ids.
Result<std::vector<EvalRow>> run_eval(const std::vector<EvalModel>& models, const std::string& text,
                                      const EvalOptions& opts, const EvalProgress& progress = {});

// KL(P || Q) in nats for one position's logits, softmax in double.
double kl_divergence_logits(const float* p_logits, const float* q_logits, int32_t n_vocab);

// Number of elements of the tensors counted by Model::weight_bytes.
uint64_t weight_elements(const Model& model);

std::string format_eval_table(const std::vector<EvalRow>& rows);  // markdown
std::string format_eval_json(const std::vector<EvalRow>& rows);   // a JSON array, one object per row

}  // namespace llmopt
