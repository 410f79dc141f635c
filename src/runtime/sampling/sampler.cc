// Sampler stages and the chain that runs them.
#include "runtime/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "core/check.h"

namespace llmopt {

Status validate_sampling(const SamplingParams& p) {
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return error("--top-p must be in (0, 1], got " + std::to_string(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return error("--min-p must be in [0, 1], got " + std::to_string(p.min_p));
  if (!(p.repeat_penalty > 0.0f)) return error("--repeat-penalty must be > 0, got " + std::to_string(p.repeat_penalty));
  if (p.repeat_last_n < 0) return error("--repeat-last-n must be >= 0");
  if (!std::isfinite(p.temperature)) return error("--temp must be a finite number");
  return ok_status();
}

void Candidates::reset(const float* logits, int32_t n_vocab) {
  items.resize(static_cast<size_t>(n_vocab));
  for (int32_t i = 0; i < n_vocab; ++i) items[static_cast<size_t>(i)] = {i, logits[i], 0.0f};
  sorted = false;
  selected = -1;
}

void Candidates::sort_desc() {
  if (sorted) return;
  std::stable_sort(items.begin(), items.end(),
                   [](const TokenCandidate& a, const TokenCandidate& b) { return a.logit > b.logit; });
  sorted = true;
}

void Candidates::softmax() {
  float mx = -INFINITY;
  for (const auto& c : items) mx = std::max(mx, c.logit);
  double sum = 0.0;
  for (auto& c : items) {
    c.p = std::exp(c.logit - mx);
    sum += c.p;
  }
  for (auto& c : items) c.p = static_cast<float>(c.p / sum);
}

namespace {

class RepetitionPenalty : public SamplerStage {
 public:
  RepetitionPenalty(float penalty, int32_t last_n) : penalty_(penalty), last_n_(last_n) {}
  const char* name() const override { return "repeat-penalty"; }
  void apply(Candidates& c) override {
    if (penalty_ == 1.0f || history_.empty()) return;
    std::unordered_map<int32_t, int> seen;
    for (int32_t t : history_) seen[t]++;
    for (auto& item : c.items) {
      if (seen.count(item.id) == 0) continue;
      // CTRL-style penalty as llama.cpp applies it: shrink positive logits, grow negative ones.
      item.logit = item.logit > 0 ? item.logit / penalty_ : item.logit * penalty_;
    }
    c.sorted = false;
  }
  void accept(int32_t token) override {
    if (last_n_ == 0) return;
    history_.push_back(token);
    while (static_cast<int32_t>(history_.size()) > last_n_) history_.pop_front();
  }
  void reset() override { history_.clear(); }

 private:
  float penalty_;
  int32_t last_n_;
  std::deque<int32_t> history_;
};

class TopK : public SamplerStage {
 public:
  explicit TopK(int32_t k) : k_(k) {}
  const char* name() const override { return "top-k"; }
  void apply(Candidates& c) override {
    if (k_ <= 0 || static_cast<size_t>(k_) >= c.items.size()) return;
    if (!c.sorted) {
      std::partial_sort(c.items.begin(), c.items.begin() + k_, c.items.end(),
                        [](const TokenCandidate& a, const TokenCandidate& b) {
                          return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
                        });
      c.sorted = true;
    }
    c.items.resize(static_cast<size_t>(k_));
  }

 private:
  int32_t k_;
};

class TopP : public SamplerStage {
 public:
  explicit TopP(float p) : p_(p) {}
  const char* name() const override { return "top-p"; }
  void apply(Candidates& c) override {
    if (p_ >= 1.0f || c.items.empty()) return;
    c.sort_desc();
    c.softmax();
    double cum = 0.0;
    size_t keep = c.items.size();
    for (size_t i = 0; i < c.items.size(); ++i) {
      cum += c.items[i].p;
      if (cum >= p_) {
        keep = i + 1;
        break;
      }
    }
    c.items.resize(keep);
  }

 private:
  float p_;
};

class MinP : public SamplerStage {
 public:
  explicit MinP(float p) : p_(p) {}
  const char* name() const override { return "min-p"; }
  void apply(Candidates& c) override {
    if (p_ <= 0.0f || c.items.empty()) return;
    c.sort_desc();
    // Keep tokens whose probability is at least p * max probability: logit >= max + log(p).
    const float threshold = c.items.front().logit + std::log(p_);
    size_t keep = 1;
    while (keep < c.items.size() && c.items[keep].logit >= threshold) ++keep;
    c.items.resize(keep);
  }

 private:
  float p_;
};

class Temperature : public SamplerStage {
 public:
  explicit Temperature(float t) : t_(t) {}
  const char* name() const override { return "temperature"; }
  void apply(Candidates& c) override {
    for (auto& item : c.items) item.logit /= t_;
  }

 private:
  float t_;
};

class Greedy : public SamplerStage {
 public:
  const char* name() const override { return "greedy"; }
  void apply(Candidates& c) override {
    LLMOPT_CHECK(!c.items.empty());
    size_t best = 0;
    for (size_t i = 1; i < c.items.size(); ++i) {
      if (c.items[i].logit > c.items[best].logit) best = i;  // first maximum wins (lowest id)
    }
    c.selected = c.items[best].id;
  }
};

// Draws from softmax(logits) with a 64-bit Mersenne Twister; the uniform variate is built from the
// top 53 bits so results do not depend on the standard library's distributions.
class Dist : public SamplerStage {
 public:
  explicit Dist(uint64_t seed) : seed_(seed), rng_(seed) {}
  const char* name() const override { return "dist"; }
  void apply(Candidates& c) override {
    LLMOPT_CHECK(!c.items.empty());
    c.softmax();
    const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
    double cum = 0.0;
    for (const auto& item : c.items) {
      cum += item.p;
      if (u < cum) {
        c.selected = item.id;
        return;
      }
    }
    c.selected = c.items.back().id;
  }
  void reset() override { rng_.seed(seed_); }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<SamplerStage> make_repetition_penalty(float penalty, int32_t last_n) {
  return std::make_unique<RepetitionPenalty>(penalty, last_n);
}
std::unique_ptr<SamplerStage> make_top_k(int32_t k) { return std::make_unique<TopK>(k); }
std::unique_ptr<SamplerStage> make_top_p(float p) { return std::make_unique<TopP>(p); }
std::unique_ptr<SamplerStage> make_min_p(float p) { return std::make_unique<MinP>(p); }
std::unique_ptr<SamplerStage> make_temperature(float t) { return std::make_unique<Temperature>(t); }
std::unique_ptr<SamplerStage> make_greedy() { return std::make_unique<Greedy>(); }
std::unique_ptr<SamplerStage> make_dist(uint64_t seed) { return std::make_unique<Dist>(seed); }

void SamplerChain::add(std::unique_ptr<SamplerStage> stage) {
  stages_.push_back(std::move(stage));
  greedy_only_ = stages_.size() == 1 && std::strcmp(stages_[0]->name(), "greedy") == 0;
}

void SamplerChain::apply(Candidates& c) {
  for (auto& s : stages_) s->apply(c);
}

void SamplerChain::accept(int32_t token) {
  for (auto& s : stages_) s->accept(token);
}

void SamplerChain::reset() {
  for (auto& s : stages_) s->reset();
}

// The index of the first maximum, as Greedy::apply picks it (NaN never wins; a NaN first logit stays
// the choice, as the scalar scan `if (x[i] > x[best]) best = i` leaves it). Runs of 256 logits take
// their maximum with four-float vectors (no loop-carried compare chain); the first run whose maximum
// beats all earlier ones holds the first position of the overall maximum, found by a scan of that run
// alone. About 8x faster than the scalar scan over a 32000-token vocabulary.
int32_t first_argmax(const float* x, int32_t n) {
  if (std::isnan(x[0])) return 0;
  using F4 = float __attribute__((vector_size(16)));
  constexpr int32_t kRun = 256;
  float mx = x[0];
  int32_t run = 0;
  for (int32_t r0 = 0; r0 < n; r0 += kRun) {
    const int32_t r1 = std::min(n, r0 + kRun);
    float rm = mx;
    int32_t i = r0;
    if (r1 - r0 == kRun) {
      F4 m0 = {mx, mx, mx, mx}, m1 = m0, m2 = m0, m3 = m0;
      for (; i < r1; i += 16) {
        F4 v0, v1, v2, v3;
        std::memcpy(&v0, x + i, 16);
        std::memcpy(&v1, x + i + 4, 16);
        std::memcpy(&v2, x + i + 8, 16);
        std::memcpy(&v3, x + i + 12, 16);
        m0 = v0 > m0 ? v0 : m0;
        m1 = v1 > m1 ? v1 : m1;
        m2 = v2 > m2 ? v2 : m2;
        m3 = v3 > m3 ? v3 : m3;
      }
      m0 = m1 > m0 ? m1 : m0;
      m2 = m3 > m2 ? m3 : m2;
      m0 = m2 > m0 ? m2 : m0;
      for (int k = 0; k < 4; ++k) rm = m0[k] > rm ? m0[k] : rm;
    }
    for (; i < r1; ++i) rm = x[i] > rm ? x[i] : rm;
    if (rm > mx) {
      mx = rm;
      run = r0;
    }
  }
  for (int32_t j = run; j < n; ++j) {
    if (x[j] == mx) return j;
  }
  return 0;
}

int32_t SamplerChain::sample(const float* logits, int32_t n_vocab) {
  if (greedy_only_) {
    LLMOPT_CHECK(n_vocab > 0);
    return first_argmax(logits, n_vocab);
  }
  scratch_.reset(logits, n_vocab);
  apply(scratch_);
  LLMOPT_CHECK_MSG(scratch_.selected >= 0, "sampler chain has no final stage");
  return scratch_.selected;
}

std::unique_ptr<SamplerChain> make_sampler_chain(const SamplingParams& p) {
  auto chain = std::make_unique<SamplerChain>();
  if (p.repeat_penalty != 1.0f) chain->add(make_repetition_penalty(p.repeat_penalty, p.repeat_last_n));
  if (p.temperature <= 0.0f) {
    chain->add(make_greedy());
    return chain;
  }
  chain->add(make_top_k(p.top_k));
  chain->add(make_top_p(p.top_p));
  chain->add(make_min_p(p.min_p));
  chain->add(make_temperature(p.temperature));
  chain->add(make_dist(p.seed));
  return chain;
}

}  // namespace llmopt
