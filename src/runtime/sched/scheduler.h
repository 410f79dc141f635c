// Scheduler: decides, each step, which requests compute how many tokens.
//
// One token budget per step (max_batch_tokens) and a cap on running requests. Running requests are
// served first, in admission order (so decodes and unfinished prompt chunks go before new work);
// then waiting requests are admitted in arrival order while budget, the running cap and KV blocks
// allow. A long prompt takes whatever budget is left and continues next step (chunked prefill).
// When a running request cannot get the blocks it needs, the newest running request is preempted:
// its blocks are freed and it goes back to the front of the waiting queue, to be recomputed from
// its tokens (prompt and output so far) when readmitted. The waiting queue is bounded: add() refuses
// beyond it, for the caller to turn into a 429/503.
//
// Baselines, for comparison in the same binary:
//   - static batching: a new batch is admitted only when the previous batch has completely finished;
//   - contiguous KV: each admitted request reserves blocks for the whole context up front.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/kv/kv_manager.h"
#include "runtime/sched/request.h"

namespace llmopt {

enum class BatchingMode { kContinuous, kStatic };
enum class KvLayout { kPaged, kContiguous };

struct SchedulerConfig {
  int32_t max_batch_tokens = 512;   // tokens computed per step, over all requests
  int32_t max_running = 16;         // requests in the running batch
  int32_t max_waiting = 1024;       // bounded waiting queue
  BatchingMode batching = BatchingMode::kContinuous;
  KvLayout kv_layout = KvLayout::kPaged;
  int32_t contiguous_tokens = 0;    // per-request reservation with kContiguous
};
Status validate(const SchedulerConfig& c);

struct ScheduledChunk {
  Request* req = nullptr;
  int32_t pos0 = 0;       // first position computed
  int32_t n_tokens = 0;   // tokens computed this step
  bool sample = false;    // the chunk reaches the last token: sample from its logits
};

struct ScheduleOutput {
  std::vector<ScheduledChunk> chunks;
  std::vector<BlockCopy> copies;      // copy-on-write copies to make before the forward pass
  std::vector<Request*> preempted;
  int32_t n_tokens = 0;
  bool empty() const { return chunks.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, KvManager& kv);

  const SchedulerConfig& config() const { return config_; }
  // Queues a request (state kWaiting, no blocks). Refused when the waiting queue is full.
  Status add(Request* r);
  ScheduleOutput schedule();
  // After the forward pass: the scheduled tokens are in the cache.
  void on_computed(const ScheduleOutput& out);
  // A running request is done: its blocks are freed.
  void finish(Request* r);
  // Removes a waiting or running request (abort); false if unknown.
  bool remove(Request* r);

  int32_t n_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t n_running() const { return static_cast<int32_t>(running_.size()); }
  const std::vector<Request*>& running() const { return running_; }
  int64_t n_preemptions() const { return n_preemptions_; }

 private:
  int32_t reserve_tokens(const Request& r, int32_t upto) const;
  bool try_admit(Request* r, int32_t budget, ScheduleOutput& out);
  void preempt(Request* r, ScheduleOutput& out);

  SchedulerConfig config_;
  KvManager& kv_;
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;
  int64_t n_preemptions_ = 0;
};

}  // namespace llmopt
