// Speculative generation for one request: draft k tokens, verify them with one batched target pass,
// keep the longest accepted prefix plus one target token. The output distribution is exactly the
// target's (greedy output is identical to plain greedy decoding). The target's KV cache rolls back
// past rejected tokens by resetting its computed length: later passes overwrite those slots.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/spec/drafter.h"

namespace llmopt {

class AdaptiveK;

struct SpecOptions {
  int32_t k = 4;          // tokens drafted per round (the upper bound with adaptive)
  bool adaptive = false;  // choose k per round from acceptance and measured costs (0 = off)
  // With adaptive: estimates kept across requests of the same target/drafter pair (nullptr: fresh
  // per request). Must have been made with the same k.
  AdaptiveK* adaptive_state = nullptr;
};

struct SpecStats {
  int64_t rounds = 0;          // target passes that verified at least one drafted token
  int64_t drafted = 0;
  int64_t accepted = 0;
  int64_t target_passes = 0;   // every target pass after the prompt
  int64_t generated = 0;
  std::vector<int64_t> drafted_at, accepted_at;  // by position in the draft (0 = first)
  std::vector<int64_t> rounds_with_k;            // index k: rounds that drafted k tokens (k = 0: plain)
  double draft_seconds = 0.0;
  double target_seconds = 0.0;
  double prefill_seconds = 0.0;  // the target's prefill of the prompt (all but its last token)
  double acceptance_rate() const { return drafted > 0 ? static_cast<double>(accepted) / drafted : 0.0; }
  double tokens_per_pass() const { return target_passes > 0 ? static_cast<double>(generated) / target_passes : 0.0; }
  void add(const SpecStats& o);
};

// Errors: as generate(), plus a repetition penalty (not supported with speculation) and k < 1.
Result<GenerateResult> generate_speculative(const Model& target, Drafter& drafter, std::span<const int32_t> prompt,
                                            const GenerateOptions& opts, const SpecOptions& spec, ThreadPool& pool,
                                            SpecStats* stats = nullptr, const TextCallback& on_text = nullptr);

}  // namespace llmopt
