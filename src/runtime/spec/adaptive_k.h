// Adaptive draft length. From a running estimate of the per-token acceptance rate alpha and the
// measured costs (a plain target pass, the extra cost per verified token, a draft token), pick the k
// that maximizes expected tokens per unit time:
//   E(k) = (1 - alpha^(k+1)) / (1 - alpha)        tokens per round (Leviathan et al. 2023)
//   T(k) = t_plain + k * (t_verify_extra + t_draft)  seconds per round, T(0) = t_plain
// When k = 0 wins, speculation is off; it is probed again (k = 1) after a while so a change in
// acceptance is noticed; each probe that does not turn it back on doubles the wait (24 .. 4096
// rounds), and the wait is at least ten times the probe's own cost in plain rounds (a model drafter
// first catches up on every token made while it was off). The estimates describe a target/drafter pair, so one AdaptiveK can be kept across requests.
#pragma once

#include <cstdint>

namespace llmopt {

class AdaptiveK {
 public:
  AdaptiveK(int32_t k_max, bool adaptive) : k_max_(k_max), adaptive_(adaptive) {}
  // The k for the next round.
  int32_t choose();
  // After a round: k drafted tokens (0 for a plain round), of which `accepted` were kept; times in s.
  void observe(int32_t drafted, int32_t accepted, double draft_seconds, double target_seconds);
  double alpha() const { return (acc_ + 1.0) / (trials_ + 2.0); }
  double expected_tokens(int32_t k) const;
  double round_seconds(int32_t k) const;

 private:
  int32_t k_max_;
  bool adaptive_;
  double acc_ = 0.0, trials_ = 0.0;  // decayed counts
  double t_plain_ = -1.0, t_extra_ = 0.0, t_draft_ = 0.0;
  int32_t n_plain_ = 0, off_rounds_ = 0;
  int32_t probe_after_ = 24;
  bool probing_ = false;
  int32_t on_streak_ = 0;
  bool measured_extra_ = false;
};

}  // namespace llmopt
