// Perplexity of a model on a text, in two protocols:
//  - chunks (llama.cpp's): tokenize the whole text, cut non-overlapping chunks of n_ctx tokens,
//    put BOS first where the model uses one, score the second half of each chunk.
//  - documents (doc_sep set): split the text on doc_sep, strip each document, encode it with BOS,
//    truncate to n_ctx tokens and score every token after BOS with full causal context.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "core/thread_pool.h"
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

}  // namespace llmopt
