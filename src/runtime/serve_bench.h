// serve-bench: replays a request workload through the batching engine (no HTTP) and measures what
// a serving system is judged by: request and token throughput, time to first token, time per output
// token, inter-token latency, end-to-end latency (mean, p50, p90, p99), KV memory utilization,
// preemptions and prefix-cache hit rate.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace llmopt {

// A length: fixed ("128"), uniform in a range ("64:256") or a list cycled over requests ("10,50,100").
struct LengthSpec {
  int32_t lo = 128, hi = 128;
  std::vector<int32_t> cycle;
  int32_t max() const;
};
Result<LengthSpec> parse_length_spec(const std::string& s);

struct WorkloadSpec {
  int32_t n_requests = 64;
  LengthSpec prompt_len;
  LengthSpec output_len;
  std::vector<std::pair<int32_t, int32_t>> from_file;  // (prompt, output) per request; overrides the above
  double rate = 0.0;           // Poisson arrivals, requests/s; 0: all at once
  int32_t shared_prefix = 0;   // tokens common to every prompt, before its own prompt_len tokens
  uint64_t seed = 1;
};
// Lines "PROMPT_LEN OUTPUT_LEN" ('#' comments and blank lines allowed).
Result<std::vector<std::pair<int32_t, int32_t>>> read_workload_file(const std::string& path);

struct WorkloadRequest {
  double arrival = 0.0;  // seconds after the start
  std::vector<int32_t> prompt;
  int32_t max_new = 0;
};
// Prompts are random token ids (deterministic in the seed), after BOS when the model has one.
Result<std::vector<WorkloadRequest>> make_workload(const WorkloadSpec& spec, const Model& model, int32_t n_ctx);

struct LatencySummary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
  int64_t n = 0;
};
LatencySummary summarize(std::vector<double> v);

struct ServeBenchResult {
  std::string label;
  int32_t n_requests = 0;
  int64_t output_tokens = 0;
  int64_t prompt_tokens = 0;
  double seconds = 0.0;
  double request_throughput() const { return seconds > 0 ? n_requests / seconds : 0; }
  double output_tps() const { return seconds > 0 ? static_cast<double>(output_tokens) / seconds : 0; }
  double total_tps() const { return seconds > 0 ? static_cast<double>(output_tokens + prompt_tokens) / seconds : 0; }
  LatencySummary ttft, tpot, itl, e2e;  // seconds
  double kv_utilization = 0.0;
  int64_t preemptions = 0;
  double prefix_hit_rate = 0.0;  // prompt tokens served from the cache / prompt tokens
  double mean_tokens_per_step = 0.0;
  size_t kv_bytes = 0;
  int64_t spec_drafted = 0, spec_accepted = 0;
};

// Speculation of every request: a draft model (when set) or prompt-lookup n-grams (ngram > 0), up to
// k drafted tokens per step.
struct ServeSpec {
  int32_t ngram = 0;
  int32_t k = 4;
  std::shared_ptr<const Model> draft;
};

// Runs the workload in real time (arrivals by the wall clock) through a fresh engine.
Result<ServeBenchResult> run_serve_bench(const Model& model, const EngineConfig& config,
                                         const std::vector<WorkloadRequest>& workload, ThreadPool& pool,
                                         const std::string& label, const ServeSpec& spec = {});

// Of several rounds of one mode, the one with the median output throughput (the lower middle one of
// an even count). rounds must not be empty.
ServeBenchResult median_throughput_round(const std::vector<ServeBenchResult>& rounds);

// a against b, round by round (a[r] and b[r] ran next to each other): output throughput a / b and mean
// TTFT b / a of each round, and the median of each (the mean of the middle two for an even count).
struct RoundRatios {
  std::vector<double> throughput, ttft;
  double median_throughput = 0.0, median_ttft = 0.0;
};
RoundRatios round_ratios(const std::vector<ServeBenchResult>& a, const std::vector<ServeBenchResult>& b);

std::string serve_bench_markdown(const std::vector<ServeBenchResult>& rows);
std::string serve_bench_json(const std::vector<ServeBenchResult>& rows);

}  // namespace llmopt
