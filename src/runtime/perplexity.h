// Perplexity of a model on a text, in two protocols:
//  - chunks (llama.cpp's): tokenize the whole text, cut non-overlapping chunks of n_ctx tokens,
//    put BOS first where the model uses one, score the second half of each chunk.
//  - documents (doc_sep set): split the text on doc_sep, strip each document, encode it with BOS,
//    truncate to n_ctx tokens and score every token after BOS with full causal context.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/kv_store.h"
#include "model/model.h"

namespace llmopt {

struct PerplexityOptions {
  int32_t n_ctx = 512;
  int32_t n_chunks = -1;      // chunks protocol: at most this many chunks (-1: all)
  std::string doc_sep;        // non-empty: documents protocol
  int32_t max_docs = -1;      // documents protocol: at most this many documents (-1: all)
  int32_t batch_tokens = 2048;  // documents are packed into forward batches of about this many tokens
};

struct PerplexityResult {
  double ppl = 0.0;
  double ppl_stderr = 0.0;
  double mean_nll = 0.0;      // nats per scored token
  int64_t n_scored = 0;
  int32_t n_units = 0;        // chunks or documents evaluated
};

// progress(done, total) after each chunk / batch of documents.
using PerplexityProgress = std::function<void(int32_t done, int32_t total, double running_ppl)>;

Result<PerplexityResult> perplexity(const Model& model, const std::string& text, const PerplexityOptions& opts,
                                    ThreadPool& pool, const PerplexityProgress& progress = nullptr);

// The chunks protocol one chunk at a time, for callers that need each scored position's logits
// (llmopt eval compares models chunk by chunk). perplexity() uses it for the chunks protocol, so
// the numbers are the same.
class ChunkScorer {
 public:
  // Tokenizes `text` with the model's tokenizer and checks the options (opts.doc_sep is ignored).
  static Result<std::unique_ptr<ChunkScorer>> create(const Model& model, const std::string& text,
                                                     const PerplexityOptions& opts);
  ~ChunkScorer();

  int32_t n_chunks() const { return n_chunks_; }
  int32_t n_ctx() const { return n_ctx_; }
  // Scored positions of every chunk are first_scored() .. n_ctx()-2, predicting the next token.
  int32_t first_scored() const { return n_ctx_ / 2; }
  const std::vector<int32_t>& tokens() const { return ids_; }

  // Runs chunk c (0 <= c < n_chunks()) into `out` (all n_ctx logits rows) and adds the NLL of its
  // scored positions. Row j of the chunk is out.logits.data() + j * n_vocab; the token it predicts
  // is target(c, j).
  void run_chunk(int32_t c, ForwardOutput& out, ThreadPool& pool);
  int32_t target(int32_t c, int32_t j) const {
    return ids_[static_cast<size_t>(c) * static_cast<size_t>(n_ctx_) + static_cast<size_t>(j) + 1];
  }
  // Perplexity over the chunks run so far.
  PerplexityResult result() const;
  double running_ppl() const;

 private:
  ChunkScorer(const Model& model, std::vector<int32_t> ids, int32_t n_ctx, int32_t n_chunks, bool use_bos);
  struct State;
  const Model& model_;
  std::vector<int32_t> ids_;
  int32_t n_ctx_ = 0;
  int32_t n_chunks_ = 0;
  int32_t n_run_ = 0;
  bool use_bos_ = false;
  std::unique_ptr<State> state_;
};

}  // namespace llmopt
