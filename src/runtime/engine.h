// Engine: many requests at once over one model, continuous batching on a paged KV cache.
//
//   step() = schedule -> forward -> sample -> update
//
// schedule picks the tokens to compute this step (Scheduler: decodes, prompt chunks, admissions,
// preemptions); forward runs them as one batch, each sequence reading and writing K/V through its
// block table; sample draws the next token of every sequence whose scheduled chunk reached its last
// token, with that request's own sampler chain (own seed); update appends the token, streams it to
// the request's callback and retires finished requests.
//
// Results do not depend on batch composition: the forward pass computes each sequence's rows with
// the same operations whatever else is in the batch, and every request samples from its own RNG, so
// a request's output is the same alone, in any batch, after preemption or with prefix-cache hits.
//
// Single-threaded: call add_request/abort/step from one thread (a server funnels requests through a
// queue). Callbacks run inside add_request/step/abort and must not call back into the engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/kv/kv_manager.h"
#include "runtime/metrics.h"
#include "runtime/sampling/sampler.h"
#include "runtime/sched/scheduler.h"
#include "runtime/spec/drafter.h"

namespace llmopt {

enum class FinishReason { kNone, kEos, kStopToken, kLength, kContext, kAborted };
const char* finish_reason_name(FinishReason r);

struct EngineConfig {
  SchedulerConfig sched;
  int32_t block_size = 16;
  int64_t kv_mem_bytes = 0;   // KV memory budget in bytes; 0: use kv_tokens
  int32_t kv_tokens = 0;      // or a number of token slots; both 0: room for max_running full contexts
  bool prefix_caching = true;
  int32_t n_ctx = 0;          // per-request context (prompt + output); 0: the model's trained context
};

struct RequestSpec {
  std::vector<int32_t> prompt;
  int32_t max_new_tokens = 128;
  SamplingParams sampling;
  bool ignore_eos = false;
  std::vector<int32_t> stop_tokens;
  // Speculative decoding for this request with prompt lookup (n-grams of up to spec_ngram tokens,
  // 0 = off): up to spec_k drafted tokens ride along with its decode token in the step's batch (and
  // count against the step's token budget); the verified prefix is kept, the rest rolled back.
  int32_t spec_ngram = 0;
  int32_t spec_k = 4;
  // Or speculation with a draft model (same vocabulary as the engine's model; checked): the request
  // gets its own ModelDrafter (own KV cache of the request's context); drafting runs per request, the
  // verification in the shared batch. Takes precedence over spec_ngram.
  std::shared_ptr<const Model> spec_draft_model;
  // Called with the raw logits row (before any sampling stage) each time a token is sampled for
  // this request without speculation, just before that token is emitted: the target distribution
  // a distillation data set records. Runs inside step().
  std::function<void(const float* logits, int32_t n_vocab)> on_logits;
};

struct TokenEvent {
  int64_t id = 0;
  int32_t token = -1;        // the new token; -1 on an event without one (abort)
  int32_t index = -1;        // its index among the request's outputs
  bool finished = false;
  FinishReason reason = FinishReason::kNone;
};
using EventCallback = std::function<void(const TokenEvent&)>;

struct StepStats {
  int32_t n_seqs = 0;        // sequences in the forward batch
  int32_t n_tokens = 0;      // tokens computed
  int32_t n_sampled = 0;
  int32_t n_preempted = 0;
  int32_t n_finished = 0;
  double seconds = 0.0;
};

class Engine {
 public:
  // Errors: impossible configuration, or a KV budget smaller than one full context.
  static Result<std::unique_ptr<Engine>> create(const Model& model, const EngineConfig& config, ThreadPool& pool);

  // Queues a request; errors name the problem (empty prompt, token out of range, prompt longer than
  // the context, waiting queue full).
  Result<int64_t> add_request(RequestSpec spec, EventCallback on_event = nullptr);
  // Removes a request wherever it is and frees its blocks; its callback gets a finished event.
  bool abort(int64_t id);
  StepStats step();
  bool has_unfinished() const { return !slots_.empty(); }

  int32_t n_ctx() const { return n_ctx_; }
  int32_t n_running() const { return sched_->n_running(); }
  int32_t n_waiting() const { return sched_->n_waiting(); }
  const EngineMetrics& metrics() const { return metrics_; }
  const KvManager& kv() const { return *kv_; }
  const EngineConfig& config() const { return config_; }
  size_t kv_bytes() const { return store_->bytes(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Slot {
    Request req;
    RequestSpec spec;
    std::unique_ptr<SamplerChain> sampler;
    EventCallback on_event;
    Clock::time_point t_arrival, t_last;
    std::unique_ptr<Drafter> drafter;  // speculative requests only
    std::unique_ptr<SpecRng> spec_rng;
    DraftProposal proposal;
  };
  Engine(const Model& model, const EngineConfig& config, ThreadPool& pool, int32_t n_ctx, int32_t n_blocks);
  FinishReason check_finished(const Slot& s, int32_t token) const;
  // Drafts tokens for speculative requests about to decode; returns those requests.
  std::vector<Request*> draft_speculative();
  // Drops the drafts the schedule does not cover (whole or in part).
  void trim_unscheduled_drafts(const std::vector<Request*>& drafted, ScheduleOutput& out);
  // Verifies a speculative chunk against its logits rows; returns the tokens to emit.
  std::vector<int32_t> verify_drafts(Slot& s, Request& r, const ScheduledChunk& c, size_t chunk_index);
  // Appends one generated token and streams it; true when the request finished.
  bool emit(Slot& s, Request& r, int32_t token, Clock::time_point now, StepStats& st);
  void update_gauges(double step_seconds);

  const Model& model_;
  EngineConfig config_;
  ThreadPool& pool_;
  int32_t n_ctx_;
  std::unique_ptr<KvStore> store_;
  std::unique_ptr<KvManager> kv_;
  std::unique_ptr<Scheduler> sched_;
  std::map<int64_t, std::unique_ptr<Slot>> slots_;
  int64_t next_id_ = 1;
  EngineMetrics metrics_;
  ForwardOutput fwd_;
  std::vector<int32_t> sampled_;     // step(): each chunk's plainly sampled token, or -1
  std::vector<size_t> sample_todo_;  // step(): the chunks sampled in parallel
  std::vector<SeqInput> inputs_;
  std::vector<TokenDistribution> spec_p_;
};

}  // namespace llmopt
