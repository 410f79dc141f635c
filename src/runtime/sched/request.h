// A request as the scheduler sees it: its tokens (prompt, then output), how many of them have K/V
// in the cache, and its blocks. There are no prefill/decode phases: a request simply has tokens
// not yet computed, and each step computes some of them (all of a short prompt, a chunk of a long
// one, or the one token sampled last step).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/kv/kv_manager.h"

namespace llmopt {

enum class RequestState { kWaiting, kRunning, kFinished };

struct Request {
  int64_t id = 0;
  std::vector<int32_t> tokens;  // prompt then generated tokens
  int32_t n_prompt = 0;
  int32_t max_tokens = 0;       // tokens.size() never exceeds this (prompt + max new, within the context)
  int32_t n_computed = 0;       // leading tokens whose K/V are in the cache
  SeqKv kv;
  RequestState state = RequestState::kWaiting;
  int32_t n_preemptions = 0;
  int32_t n_cached_tokens = 0;  // prompt tokens served by the prefix cache at first admission
  bool admitted_once = false;
  // Speculative tokens at the end of `tokens` (drafted, not yet verified). They are computed like any
  // other token but never registered in the prefix cache; the engine removes the rejected ones.
  int32_t n_draft = 0;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  int32_t n_output() const { return n_tokens() - n_prompt; }
  int32_t n_uncomputed() const { return n_tokens() - n_computed; }
};

}  // namespace llmopt
