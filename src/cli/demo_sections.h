// The parts of `llmopt demo` beyond the KV-cache table, for a real model: weight types (size,
// perplexity, speed), speculative decoding, batched serving and a chat answer. Each prints one
// titled section on stdout; parts that cannot run on the model say so instead of faking a number.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"

namespace llmopt::cli {

// Re-writes the weights as F32, F16, Q8_0 and Q4_0 (plus the model as loaded) and measures size, speed and,
// when eval_text is not empty, perplexity on it.
Status demo_types(const Model& model, const std::string& model_path, const std::vector<int32_t>& prompt,
                  int32_t n_predict, const std::string& eval_text, ThreadPool& pool);
// Prompt-lookup speculative decoding on a prompt that invites copying, against plain decoding.
Status demo_speculative(const Model& model, ThreadPool& pool);
// The same against a draft model file (a distilled draft of this target); says so when none is given.
Status demo_draft_model(const Model& model, const std::string& draft_path, ThreadPool& pool);
// 8 requests through the batching engine vs one at a time.
Status demo_batching(const Model& model, ThreadPool& pool);
// One chat exchange with the model's ChatML template (skipped for models without one).
Status demo_chat(const Model& model, ThreadPool& pool);

}  // namespace llmopt::cli
