// Scheduler: running first, then admission; preemption by recompute.
#include "runtime/sched/scheduler.h"

#include <algorithm>

#include "core/check.h"

namespace llmopt {

Status validate(const SchedulerConfig& c) {
  if (c.max_batch_tokens <= 0) return error("the per-step token budget (max batch tokens) must be positive");
  if (c.max_running <= 0) return error("the running-request cap (max sequences) must be positive");
  if (c.max_waiting < 0) return error("the waiting-queue bound must not be negative");
  if (c.kv_layout == KvLayout::kContiguous && c.contiguous_tokens <= 0) {
    return error("contiguous KV needs a positive per-request reservation (context length)");
  }
  return ok_status();
}

Scheduler::Scheduler(const SchedulerConfig& config, KvManager& kv) : config_(config), kv_(kv) {}

Status Scheduler::add(Request* r) {
  LLMOPT_CHECK(r != nullptr && r->kv.empty());
  if (n_waiting() >= config_.max_waiting) {
    return error("the waiting queue is full (" + std::to_string(config_.max_waiting) +
                 " requests); try again later");
  }
  r->state = RequestState::kWaiting;
  waiting_.push_back(r);
  return ok_status();
}

int32_t Scheduler::reserve_tokens(const Request& r, int32_t upto) const {
  if (config_.kv_layout == KvLayout::kContiguous) return std::max(upto, config_.contiguous_tokens);
  return upto;
}

void Scheduler::preempt(Request* r, ScheduleOutput& out) {
  auto it = std::find(running_.begin(), running_.end(), r);
  LLMOPT_CHECK(it != running_.end());
  running_.erase(it);
  kv_.free(r->kv);
  r->n_computed = 0;
  r->state = RequestState::kWaiting;
  ++r->n_preemptions;
  ++n_preemptions_;
  waiting_.push_front(r);
  out.preempted.push_back(r);
}

bool Scheduler::try_admit(Request* r, int32_t budget, ScheduleOutput& out) {
  const int32_t start = kv_.cached_prefix_blocks(r->tokens) * kv_.block_size();
  const int32_t n_new = std::min(r->n_tokens() - start, budget);
  const int32_t end = start + n_new;
  if (!kv_.can_allocate(r->kv, r->tokens, start, reserve_tokens(*r, end))) return false;
  LLMOPT_CHECK(kv_.allocate(r->kv, r->tokens, reserve_tokens(*r, end)));
  LLMOPT_CHECK(r->kv.n_cached_tokens == start);
  r->n_computed = start;
  if (!r->admitted_once) {
    r->n_cached_tokens = start;
    r->admitted_once = true;
  }
  r->state = RequestState::kRunning;
  running_.push_back(r);
  out.chunks.push_back({r, start, n_new, end == r->n_tokens()});
  return true;
}

ScheduleOutput Scheduler::schedule() {
  ScheduleOutput out;
  int32_t budget = config_.max_batch_tokens;

  // Static batching forms a new batch only when the previous one is gone; its members get blocks
  // for their prompt now and compute tokens below.
  if (config_.batching == BatchingMode::kStatic && running_.empty()) {
    while (!waiting_.empty() && n_running() < config_.max_running) {
      Request* r = waiting_.front();
      if (!kv_.can_allocate(r->kv, r->tokens, 0, reserve_tokens(*r, r->n_tokens()))) break;
      LLMOPT_CHECK(kv_.allocate(r->kv, r->tokens, reserve_tokens(*r, r->n_tokens())));
      r->n_computed = r->kv.n_cached_tokens;
      if (!r->admitted_once) {
        r->n_cached_tokens = r->kv.n_cached_tokens;
        r->admitted_once = true;
      }
      r->state = RequestState::kRunning;
      running_.push_back(r);
      waiting_.pop_front();
    }
  }

  // Running requests first, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Request* r = running_[i];
    const int32_t n_new = std::min(r->n_uncomputed(), budget);
    if (n_new <= 0) continue;
    const int32_t end = r->n_computed + n_new;
    bool ok = false;
    for (;;) {
      if (kv_.can_allocate(r->kv, r->tokens, r->n_computed, reserve_tokens(*r, end))) {
        LLMOPT_CHECK(kv_.allocate(r->kv, r->tokens, reserve_tokens(*r, end)));
        LLMOPT_CHECK(kv_.make_writable(r->kv, r->n_computed, end, out.copies));
        ok = true;
        break;
      }
      Request* victim = running_.back();
      preempt(victim, out);
      if (victim == r) break;
    }
    if (!ok) break;  // r itself was preempted; it was the last running request
    out.chunks.push_back({r, r->n_computed, n_new, end == r->n_tokens()});
    budget -= n_new;
  }

  // Then new work, in arrival order, unless blocks just ran short.
  if (config_.batching == BatchingMode::kContinuous && out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 && n_running() < config_.max_running) {
      if (!try_admit(waiting_.front(), budget, out)) break;
      waiting_.pop_front();
      budget -= out.chunks.back().n_tokens;
    }
  }
  out.n_tokens = config_.max_batch_tokens - budget;
  return out;
}

void Scheduler::on_computed(const ScheduleOutput& out) {
  for (const ScheduledChunk& c : out.chunks) {
    Request* r = c.req;
    LLMOPT_CHECK(r->n_computed == c.pos0);
    r->n_computed += c.n_tokens;
    kv_.commit_computed(r->kv, r->tokens, std::min(r->n_computed, r->n_tokens() - r->n_draft));
  }
}

void Scheduler::finish(Request* r) {
  auto it = std::find(running_.begin(), running_.end(), r);
  LLMOPT_CHECK(it != running_.end());
  running_.erase(it);
  kv_.free(r->kv);
  r->state = RequestState::kFinished;
}

bool Scheduler::remove(Request* r) {
  if (auto it = std::find(waiting_.begin(), waiting_.end(), r); it != waiting_.end()) {
    waiting_.erase(it);
    r->state = RequestState::kFinished;
    return true;
  }
  if (auto it = std::find(running_.begin(), running_.end(), r); it != running_.end()) {
    running_.erase(it);
    kv_.free(r->kv);
    r->state = RequestState::kFinished;
    return true;
  }
  return false;
}

}  // namespace llmopt
