// AdaptiveK.
#include "runtime/spec/adaptive_k.h"

#include <algorithm>
#include <cmath>

namespace llmopt {
namespace {
constexpr double kDecay = 0.95;        // weight of the past in the acceptance counts and cost averages
constexpr int32_t kProbeMin = 24;      // plain rounds before speculation is tried again ...
constexpr int32_t kProbeMax = 4096;    // ... doubling after each probe that does not switch it on
}  // namespace

double AdaptiveK::expected_tokens(int32_t k) const {
  const double a = std::min(alpha(), 0.999999);
  return (1.0 - std::pow(a, k + 1)) / (1.0 - a);
}

double AdaptiveK::round_seconds(int32_t k) const {
  return std::max(t_plain_, 1e-9) + k * (t_extra_ + t_draft_);
}

int32_t AdaptiveK::choose() {
  if (!adaptive_) return k_max_;
  if (t_plain_ < 0.0) return 0;                 // measure a plain pass first
  if (!measured_extra_) return std::max(1, k_max_ / 2);
  int32_t best = 0;
  double best_rate = 1.0 / round_seconds(0);
  for (int32_t k = 1; k <= k_max_; ++k) {
    const double rate = expected_tokens(k) / round_seconds(k);
    if (rate > best_rate * 1.08) {  // a margin: never speculate for a gain within noise
      best_rate = rate;
      best = k;
    }
  }
  if (best > 0) {
    off_rounds_ = 0;
    probing_ = false;
    // Only a lasting win resets the probe back-off (a pair near break-even must not flip-flop).
    if (++on_streak_ >= 16) probe_after_ = kProbeMin;
    return best;
  }
  on_streak_ = 0;
  if (probing_) {  // the last probe did not turn speculation on: wait longer before the next
    probe_after_ = std::min(2 * probe_after_, kProbeMax);
    probing_ = false;
  }
  if (++off_rounds_ >= probe_after_) {
    off_rounds_ = 0;
    probing_ = true;
    return 1;  // probe: re-measure acceptance
  }
  return 0;
}

void AdaptiveK::observe(int32_t drafted, int32_t accepted, double draft_seconds, double target_seconds) {
  if (probing_ && drafted > 0 && t_plain_ > 0.0) {
    // A probe costs what the drafter needs to catch up on the tokens made while it was off: keep
    // probes to about a tenth of the time spent in plain rounds.
    const double probe_rounds = (draft_seconds + target_seconds) / t_plain_;
    probe_after_ = std::min(kProbeMax, std::max(probe_after_, static_cast<int32_t>(10.0 * probe_rounds)));
  }
  auto ema = [](double& v, double x) { v = v < 0.0 ? x : kDecay * v + (1.0 - kDecay) * x; };
  if (drafted == 0) {
    if (n_plain_++ == 0) t_plain_ = target_seconds; else ema(t_plain_, target_seconds);
    return;
  }
  acc_ = kDecay * acc_ + accepted;
  trials_ = kDecay * trials_ + accepted + (accepted < drafted ? 1 : 0);
  const double extra = std::max(0.0, (target_seconds - std::max(t_plain_, 0.0)) / drafted);
  if (!measured_extra_) {
    t_extra_ = extra;
    t_draft_ = draft_seconds / drafted;
    measured_extra_ = true;
  } else {
    t_extra_ = kDecay * t_extra_ + (1.0 - kDecay) * extra;
    t_draft_ = kDecay * t_draft_ + (1.0 - kDecay) * (draft_seconds / drafted);
  }
}

}  // namespace llmopt
