// The verifier of speculative decoding: given k drafted tokens, the target's distributions at the
// k + 1 positions (after the context, after each drafted token) and the draft's distributions for the
// k drafted tokens, decide how many drafted tokens to keep and the token that follows them.
//
// Sampling (Leviathan et al. 2023; Chen et al. 2023): drafted token x_i is accepted with probability
// min(1, p_i(x_i) / q_i(x_i)); at the first rejection the next token is drawn from
// normalize(max(0, p_i - q_i)); when all k are accepted one more is drawn from p_k. The output then has
// exactly the target's distribution. Greedy: accept while x_i is the target's argmax; the next token is
// the target's argmax where they first differ (or after the last).
#pragma once

#include <cstdint>
#include <span>

#include "runtime/spec/distribution.h"

namespace llmopt {

struct Verdict {
  int32_t n_accepted = 0;  // leading drafted tokens kept
  int32_t next = -1;       // the token after them (from the target)
};

// p has drafted.size() + 1 entries, q has drafted.size().
Verdict verify_sampled(std::span<const int32_t> drafted, std::span<const TokenDistribution* const> p,
                       std::span<const TokenDistribution* const> q, SpecRng& rng);
// target_argmax has drafted.size() + 1 entries.
Verdict verify_greedy(std::span<const int32_t> drafted, std::span<const int32_t> target_argmax);

}  // namespace llmopt
