// Model: config + weights + tokenizer, and the forward pass over a *batch of sequences*.
// Each sequence in a batch adds one or more tokens at known positions, reading and writing its K/V
// through its block table. Single-sequence decode is a batch of one; prefill is one entry with many
// tokens; continuous batching mixes both.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "formats/weight_source.h"
#include "model/config.h"
#include "model/kv_store.h"
#include "model/linear_observer.h"
#include "model/weights.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {

enum class LogitsMode { kNone, kLast, kAll };

struct SeqInput {
  std::span<const int32_t> tokens;       // new tokens of this sequence
  int32_t pos0 = 0;                       // position of tokens[0]; earlier positions are in the cache
  std::span<const int32_t> block_table;   // must cover positions [0, pos0 + tokens.size())
  LogitsMode logits = LogitsMode::kLast;
};

struct ForwardOutput {
  // Concatenated logits rows, [n_rows][n_vocab]: for each input in order, its rows (kLast: 1 row,
  // kAll: tokens.size() rows, kNone: 0 rows).
  std::vector<float> logits;
  // Row index in `logits` where each input's rows start.
  std::vector<int64_t> row_offset;
};

class Model {
 public:
  Model(ModelConfig config, Weights weights, std::unique_ptr<Tokenizer> tokenizer,
        std::shared_ptr<const WeightSource> source);

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  bool has_tokenizer() const { return tokenizer_ != nullptr; }
  const WeightSource& source() const { return *source_; }
  std::shared_ptr<const WeightSource> source_ptr() const { return source_; }
  // Sum of the bytes of all weight tensors.
  size_t weight_bytes() const;

  // Runs the batch. Positions must be < n_ctx_train for GPT-2 (learned positions); the caller checks
  // limits on untrusted input, so violations here are CHECK failures.
  void forward(std::span<const SeqInput> batch, KvStore& kv, ForwardOutput& out, ThreadPool& pool) const;
  // The same, handing every linear layer's input to `observer` (calibration); nullptr: as above.
  void forward(std::span<const SeqInput> batch, KvStore& kv, ForwardOutput& out, ThreadPool& pool,
               LinearObserver* observer) const;

 private:
  ModelConfig config_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::shared_ptr<const WeightSource> source_;
};

}  // namespace llmopt
