// Single-request text generation over the batched forward pass: prefill the prompt, then decode
// token by token with the KV cache (or, with kv_cache = false, recompute the whole prefix every
// step: the baseline the cache exists to beat). Stops on EOS, a stop string, n_predict or context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/sampling/sampler.h"

namespace llmopt {

struct GenerateOptions {
  int32_t n_predict = 128;        // < 0: until EOS or the context is full
  SamplingParams sampling;
  bool kv_cache = true;
  std::vector<std::string> stop;  // generation ends when the text ends with one (it is removed)
  bool ignore_eos = false;
  int32_t block_size = 16;        // KV block size in tokens
  int32_t n_ctx = 0;              // 0: the model's trained context
};

struct GenerateStats {
  int32_t n_prompt = 0;
  int32_t n_generated = 0;
  double prompt_seconds = 0.0;   // prefill (first token's logits)
  double gen_seconds = 0.0;      // everything after
  double prompt_tps() const { return prompt_seconds > 0 ? n_prompt / prompt_seconds : 0.0; }
  double gen_tps() const { return gen_seconds > 0 ? (n_generated > 1 ? n_generated - 1 : 0) / gen_seconds : 0.0; }
};

struct GenerateResult {
  std::vector<int32_t> tokens;   // generated ids (without the prompt)
  std::string text;              // their text (stop string removed)
  std::string stop_reason;       // "eos", "stop", "length", "context", "callback"
  GenerateStats stats;
};

// Receives each new piece of text as soon as it is complete UTF-8; return false to stop.
using TextCallback = std::function<bool(const std::string& piece)>;

// Errors: empty prompt, prompt that does not fit the context, bad sampling parameters.
Result<GenerateResult> generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& opts,
                                ThreadPool& pool, const TextCallback& on_text = nullptr);

// Collects bytes of token pieces and releases only complete UTF-8 sequences.
class Utf8Streamer {
 public:
  std::string push(const std::string& bytes);
  std::string flush();

 private:
  std::string pending_;
};

}  // namespace llmopt
