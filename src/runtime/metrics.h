// Engine metrics: counters, gauges and histograms kept by the engine, in a form the server's
// Prometheus endpoint can expose directly (cumulative histogram buckets, sum and count).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmopt {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // counts()[i]: observations <= bounds()[i] (cumulative); the last entry is +Inf (= count()).
  std::vector<int64_t> cumulative_counts() const;
  int64_t count() const { return count_; }
  double sum() const { return sum_; }
  double mean() const { return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0; }

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> counts_;  // per bucket, plus one for +Inf
  int64_t count_ = 0;
  double sum_ = 0.0;
};

// Latency buckets in seconds (1 ms .. 60 s) and token-count buckets (1 .. 8192).
std::vector<double> latency_buckets();
std::vector<double> token_buckets();

struct EngineMetrics {
  // counters
  int64_t requests_added = 0;
  int64_t requests_finished = 0;
  int64_t requests_aborted = 0;
  int64_t requests_rejected = 0;
  int64_t preemptions = 0;
  int64_t prefix_query_tokens = 0;   // prompt tokens of admitted requests
  int64_t prefix_hit_tokens = 0;     // of those, served by the prefix cache
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t computed_tokens = 0;       // tokens through the forward pass (includes recompute)
  int64_t steps = 0;
  int64_t spec_drafted_tokens = 0;   // speculative tokens drafted into steps
  int64_t spec_accepted_tokens = 0;  // of those, verified and kept
  // gauges (as of the last step)
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_free = 0;
  int32_t kv_blocks_total = 0;
  // KV utilization integrated over time: token slots holding real tokens / slots reserved.
  double kv_real_token_seconds = 0.0;
  double kv_reserved_token_seconds = 0.0;
  double kv_utilization() const {
    return kv_reserved_token_seconds > 0 ? kv_real_token_seconds / kv_reserved_token_seconds : 0.0;
  }
  // histograms
  Histogram tokens_per_step{token_buckets()};
  Histogram ttft_seconds{latency_buckets()};
  Histogram itl_seconds{latency_buckets()};
  Histogram e2e_seconds{latency_buckets()};
};

}  // namespace llmopt
