// The per-architecture forward scripts. Each runs one batch through the whole network over the
// shared blocks and writes the logits of the rows the batch asks for.
#pragma once

#include "core/thread_pool.h"
#include "model/blocks.h"
#include "model/config.h"
#include "model/kv_store.h"
#include "model/weights.h"

namespace llmopt::arch {

// logits: [batch.n_out(), n_vocab]
void gpt2_forward(const ModelConfig& cfg, const Weights& w, const blocks::TokenBatch& batch, KvStore& kv,
                  ThreadPool& pool, float* logits);
void llama_forward(const ModelConfig& cfg, const Weights& w, const blocks::TokenBatch& batch, KvStore& kv,
                   ThreadPool& pool, float* logits);

}  // namespace llmopt::arch
