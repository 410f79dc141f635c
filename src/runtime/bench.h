// Throughput benchmark in the manner of llama.cpp's llama-bench: prefill (ppN) and decode (tgN)
// tokens/s over repetitions, optionally against a memory-bandwidth roofline. This file measures and
// formats (md / json / csv strings); printing is the front end's job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"

namespace llmopt {

struct BenchOptions {
  std::vector<int32_t> n_prompt = {512};   // ppN tests; 0 entries are skipped
  std::vector<int32_t> n_gen = {128};      // tgN tests; 0 entries are skipped
  std::vector<int32_t> threads = {1};      // every test runs at each thread count
  int32_t repetitions = 5;                 // timed runs per test (one untimed warm-up before them)
  uint64_t seed = 1234;                    // for the random prompt / decode token ids
  int32_t block_size = 16;                 // KV block size in tokens
  bool roofline = false;                   // measure read bandwidth and relate tg to it
  size_t roofline_buffer_bytes = 0;        // 0: ~1 GiB, or 4x L3 when that is smaller
  int32_t roofline_passes = 5;
  // Called with one line before each test runs (may be empty).
  std::function<void(const std::string&)> on_progress;
};

// Memory read bandwidth measured with a thread pool streaming over one buffer.
struct BandwidthResult {
  int32_t threads = 0;
  size_t buffer_bytes = 0;
  int32_t passes = 0;
  double best_gbs = 0.0;     // GB/s = 1e9 bytes/s, fastest pass
  double median_gbs = 0.0;
  bool prefetch = true;      // the read loop's software prefetch (ReadProbe keeps the faster way)
};

// Bytes a single decode step reads: weights (every matrix incl. the head, norms and biases; one row
// of token_embd / pos_embd unless token_embd is the tied head) plus the K and V cache rows of all
// layers over `context` positions.
struct DecodeBytes {
  double weight_bytes = 0.0;
  double kv_bytes = 0.0;
  double total() const { return weight_bytes + kv_bytes; }
};
DecodeBytes decode_bytes_per_token(const Model& model, double context);
// Mean number of positions a tgN step attends over: steps at positions 1..N (after the 1-token
// start at position 0) attend over pos + 1 positions each, i.e. (N + 3) / 2.
double tg_mean_context(int32_t n_gen);

struct BenchRow {
  std::string test;          // "pp512", "tg128"
  int32_t n_prompt = 0;      // pp: tokens per prefill (else 0)
  int32_t n_gen = 0;         // tg: decode steps (else 0)
  int32_t threads = 0;
  std::vector<double> tps;   // tokens/s of each timed repetition
  double mean = 0.0, stddev = 0.0, median = 0.0;
  // tg rows with roofline: bytes read per decoded token and the bandwidth-bound tokens/s.
  double bytes_per_token = 0.0;
  double limit_tps = 0.0;
  // tg rows with roofline: the same test run again `repetitions` times, each run between two probe
  // passes; tokens/s as % of the limit at the mean of those two passes (the bandwidth of that moment:
  // on a shared machine it drifts by a third between minutes), one value per run, and their median.
  std::vector<double> paired_pct;
  double paired_pct_median = 0.0;
};

struct BenchReport {
  std::string model;          // name (config name or architecture) and main weight type
  uint64_t size_bytes = 0;    // weight bytes
  uint64_t params = 0;
  std::string backend;        // kernel ISA name
  uint64_t file_bytes = 0;    // model file size (filled by the caller; 0: unknown)
  uint64_t peak_rss_bytes = 0;
  std::vector<BenchRow> rows;
  std::vector<BandwidthResult> bandwidth;  // one per thread count, with roofline
};

// Checks the options against the model: counts >= 0 and inside the context, repetitions >= 1,
// threads in [1, 1024], at least one test. The message names the flag ("-p 100000 ...").
Status validate_bench_options(const ModelConfig& cfg, const BenchOptions& opts);
// Runs every test at each thread count (threads outer, pp then tg). Validates first.
Result<BenchReport> run_bench(const Model& model, const BenchOptions& opts);

// A buffer of `bytes` (rounded down to 64 bytes), first touched by the pool's threads, that pass()
// streams over once on the pool and reports in GB/s.
class ReadProbe {
 public:
  ReadProbe(ThreadPool& pool, size_t bytes);
  size_t bytes() const { return n_words_ * sizeof(uint64_t); }
  double pass(ThreadPool& pool);
  bool prefetch() const { return prefetch_; }  // the read loop's software prefetch, chosen at construction

 private:
  size_t n_words_ = 0;
  bool prefetch_ = true;
  std::unique_ptr<uint64_t[]> buf_;
};
// Streams over `bytes` of memory (rounded down to 64 bytes) `passes` times on the pool.
BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes, int32_t passes);
// The buffer size used when none is given: 1 GiB, or 4x the L3 cache when that is smaller.
size_t default_bandwidth_buffer_bytes();
// Peak resident set size of this process so far (0 if unknown).
uint64_t peak_rss_bytes();

// mean, sample standard deviation (0 for one value) and median.
void summarize(const std::vector<double>& v, double& mean, double& stddev, double& median);

enum class BenchFormat { kMarkdown, kJson, kCsv };
std::string format_bench(const BenchReport& report, BenchFormat fmt);

}  // namespace llmopt
