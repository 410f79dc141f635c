// run_bench(): ppN / tgN timing over fresh KV caches, the read-bandwidth probe for the roofline and
// the decode bytes-per-token model (bench_format.cc renders a report).
#include "runtime/bench.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <random>

#include "core/check.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "runtime/kv/block_pool.h"

namespace llmopt {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int32_t> random_tokens(int32_t n, int32_t n_vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, n_vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = dist(rng);
  return ids;
}

// One prefill of `tokens` into a fresh cache; tokens/s.
double time_prefill(const Model& model, const std::vector<int32_t>& tokens, int32_t block_size, ThreadPool& pool,
                    ForwardOutput& out) {
  const ModelConfig& cfg = model.config();
  const int32_t n = static_cast<int32_t>(tokens.size());
  const int32_t n_blocks = blocks_for_tokens(n, block_size);
  KvStore kv = KvStore::for_model(cfg, n_blocks, block_size);
  kv.prefault();  // untimed, as llama-bench clears its cache when it creates it
  BlockPool blocks(n_blocks);
  SeqBlocks seq(blocks, block_size);
  LLMOPT_CHECK(seq.reserve(n));
  SeqInput in;
  in.tokens = tokens;
  in.pos0 = 0;
  in.block_table = seq.table();
  in.logits = LogitsMode::kLast;
  const auto t0 = Clock::now();
  model.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  const double s = seconds_since(t0);
  return s > 0 ? n / s : 0.0;
}

// A 1-token start at position 0 (untimed), then one forward per token of `tokens` at positions
// 1..N with the cache; tokens/s over the N steps.
double time_decode(const Model& model, int32_t start_token, const std::vector<int32_t>& tokens, int32_t block_size,
                   ThreadPool& pool, ForwardOutput& out) {
  const ModelConfig& cfg = model.config();
  const int32_t n = static_cast<int32_t>(tokens.size());
  const int32_t total = n + 1;
  const int32_t n_blocks = blocks_for_tokens(total, block_size);
  KvStore kv = KvStore::for_model(cfg, n_blocks, block_size);
  kv.prefault();  // untimed, as llama-bench clears its cache when it creates it
  BlockPool blocks(n_blocks);
  SeqBlocks seq(blocks, block_size);
  LLMOPT_CHECK(seq.reserve(total));
  SeqInput in;
  in.block_table = seq.table();
  in.logits = LogitsMode::kLast;
  in.tokens = std::span<const int32_t>(&start_token, 1);
  in.pos0 = 0;
  model.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  const auto t0 = Clock::now();
  for (int32_t i = 0; i < n; ++i) {
    in.tokens = std::span<const int32_t>(tokens.data() + i, 1);
    in.pos0 = 1 + i;
    model.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  }
  const double s = seconds_since(t0);
  return s > 0 ? n / s : 0.0;
}

uint64_t count_params(const Weights& w) {
  uint64_t n = 0;
  auto add = [&](const TensorView& t) {
    if (t.present()) n += static_cast<uint64_t>(t.numel());
  };
  for (const TensorView* t : {&w.tok_embd, &w.pos_embd, &w.output_norm, &w.output_norm_b}) add(*t);
  if (w.output.data != w.tok_embd.data) add(w.output);
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.attn_norm_b, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bqkv, &l.wo, &l.bo,
                                &l.ffn_norm, &l.ffn_norm_b, &l.w_gate, &l.w_up, &l.b_up, &l.w_down, &l.b_down}) {
      add(*t);
    }
  }
  return n;
}

std::string model_label(const Model& model) {
  const ModelConfig& cfg = model.config();
  std::string name = cfg.name.empty() ? std::string(arch_name(cfg.arch)) : cfg.name;
  const Weights& w = model.weights();
  if (!w.layers.empty() && w.layers[0].w_up.present()) {
    const DType wt = w.layers[0].w_up.type;
    std::string t = dtype_name(kernels::plain_type_of(wt));  // as stored in the file
    for (auto& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    name += " " + t;
  }
  return name;
}

size_t l3_cache_bytes() {
#ifdef _SC_LEVEL3_CACHE_SIZE
  long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (v > 0) return static_cast<size_t>(v);
#endif
  std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index3/size");
  std::string s;
  if (f >> s && !s.empty()) {
    size_t mult = 1;
    if (s.back() == 'K') mult = 1024;
    if (s.back() == 'M') mult = 1024 * 1024;
    try {
      return static_cast<size_t>(std::stoull(s)) * mult;
    } catch (...) {
      return 0;
    }
  }
  return 0;
}

// Sum of words with 8 independent accumulators so the loads, not the adds, set the pace, over 4
// streams at once (the 4 quarters of the range), with or without software prefetch 8 KiB ahead
// (ReadProbe keeps whichever reads faster on this machine): one stream per core leaves too few cache
// misses in flight on some CPUs (a 2-core Xeon VM: 15-18 GB/s with one stream, 20-25 with four and
// the prefetch; the decode kernels themselves read 20-24 there), while on a 2-core Zen 3 VM the
// prefetch cut one thread from 21 to 6-9 GB/s (the hardware prefetchers keep up alone there, and the
// model's own one-thread decode read 18 GB/s). The probe must not report less than the model's own
// decode reaches. Compiled for the best of AVX-512, AVX2 and the baseline (GCC function
// multi-versioning), like the kernels it is compared with.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
uint64_t read_words(const uint64_t* p, int64_t n, bool prefetch) {
  constexpr int kStreams = 4;
  constexpr int64_t kAheadWords = 1024;
  uint64_t a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t seg = n / kStreams / 8 * 8;
  for (int64_t i = 0; i < seg; i += 8) {
    for (int s = 0; s < kStreams; ++s) {
      const uint64_t* q = p + s * seg + i;
      if (prefetch) __builtin_prefetch(q + kAheadWords);
      for (int j = 0; j < 8; ++j) a[j] += q[j];
    }
  }
  for (int64_t i = kStreams * seg; i < n; ++i) a[0] += p[i];
  return a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
}

volatile uint64_t g_sink = 0;

}  // namespace

void summarize(const std::vector<double>& v, double& mean, double& stddev, double& median) {
  mean = stddev = median = 0.0;
  if (v.empty()) return;
  double sum = 0.0;
  for (double x : v) sum += x;
  mean = sum / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0.0;
    for (double x : v) ss += (x - mean) * (x - mean);
    stddev = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  std::vector<double> s = v;
  std::sort(s.begin(), s.end());
  const size_t m = s.size() / 2;
  median = s.size() % 2 == 1 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

double tg_mean_context(int32_t n_gen) { return n_gen > 0 ? (static_cast<double>(n_gen) + 3.0) / 2.0 : 0.0; }

DecodeBytes decode_bytes_per_token(const Model& model, double context) {
  const ModelConfig& cfg = model.config();
  const Weights& w = model.weights();
  DecodeBytes b;
  const bool tied = w.output.data == w.tok_embd.data;
  double wb = static_cast<double>(w.output.total_bytes() + w.output_norm.nbytes + w.output_norm_b.nbytes);
  if (!tied && w.tok_embd.present()) wb += static_cast<double>(w.tok_embd.row_bytes());
  if (w.pos_embd.present()) wb += static_cast<double>(w.pos_embd.row_bytes());
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.attn_norm_b, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bqkv, &l.wo, &l.bo,
                                &l.ffn_norm, &l.ffn_norm_b, &l.w_gate, &l.w_up, &l.b_up, &l.w_down, &l.b_down}) {
      wb += static_cast<double>(t->total_bytes());
    }
  }
  b.weight_bytes = wb;
  // Each position costs 2 * kv_dim elements per layer, of the KV cache's type.
  b.kv_bytes = static_cast<double>(KvStore::bytes_per_token(cfg.n_layer, cfg.kv_dim(), KvStore::default_type())) *
               context;
  return b;
}

Status validate_bench_options(const ModelConfig& cfg, const BenchOptions& opts) {
  const int32_t n_ctx = cfg.n_ctx_train;
  if (opts.repetitions < 1) return error("-r must be at least 1 (got " + std::to_string(opts.repetitions) + ")");
  if (opts.threads.empty()) return error("-t needs at least one thread count");
  for (int32_t t : opts.threads) {
    if (t < 1 || t > 1024) return error("-t " + std::to_string(t) + " is out of range (1 to 1024 threads)");
  }
  bool any = false;
  for (int32_t p : opts.n_prompt) {
    if (p < 0) return error("-p " + std::to_string(p) + " is negative");
    if (n_ctx > 0 && p > n_ctx) {
      return error("-p " + std::to_string(p) + " exceeds the model's context of " + std::to_string(n_ctx) + " tokens");
    }
    any = any || p > 0;
  }
  for (int32_t n : opts.n_gen) {
    if (n < 0) return error("-n " + std::to_string(n) + " is negative");
    if (n_ctx > 0 && n + 1 > n_ctx) {
      return error("-n " + std::to_string(n) + " exceeds the model's context of " + std::to_string(n_ctx) +
                   " tokens (a tg test needs n + 1 positions)");
    }
    any = any || n > 0;
  }
  if (!any) return error("nothing to run: every -p and -n value is 0");
  if (opts.block_size < 1) return error("KV block size must be at least 1");
  if (opts.roofline && opts.roofline_passes < 1) return error("roofline passes must be at least 1");
  return Status();
}

namespace {

BandwidthResult probe_passes(ThreadPool& pool, ReadProbe& probe, int32_t passes) {
  BandwidthResult r;
  r.threads = pool.n_threads();
  r.buffer_bytes = probe.bytes();
  r.passes = std::max(passes, 1);
  r.prefetch = probe.prefetch();
  if (probe.bytes() == 0) return r;
  std::vector<double> gbs;
  for (int32_t k = 0; k < r.passes; ++k) {
    const double g = probe.pass(pool);
    if (g > 0) gbs.push_back(g);
  }
  if (!gbs.empty()) {
    double mean = 0, sd = 0;
    summarize(gbs, mean, sd, r.median_gbs);
    r.best_gbs = *std::max_element(gbs.begin(), gbs.end());
  }
  return r;
}

}  // namespace

Result<BenchReport> run_bench(const Model& model, const BenchOptions& opts) {
  const ModelConfig& cfg = model.config();
  LLMOPT_RETURN_IF_ERROR(validate_bench_options(cfg, opts));
  BenchReport rep;
  rep.model = model_label(model);
  rep.size_bytes = model.weight_bytes();
  rep.params = count_params(model.weights());
  rep.backend = kernels::isa_name();

  int32_t start_token = 0;
  if (model.has_tokenizer() && model.tokenizer().bos() >= 0 && model.tokenizer().bos() < cfg.n_vocab) {
    start_token = model.tokenizer().bos();
  }
  ForwardOutput out;
  for (int32_t threads : opts.threads) {
    ThreadPool pool(threads);
    struct Test {
      bool prefill;
      int32_t n;
    };
    std::vector<Test> tests;
    for (int32_t p : opts.n_prompt) {
      if (p > 0) tests.push_back({true, p});
    }
    for (int32_t n : opts.n_gen) {
      if (n > 0) tests.push_back({false, n});
    }
    for (const Test& t : tests) {
      BenchRow row;
      row.test = (t.prefill ? "pp" : "tg") + std::to_string(t.n);
      row.n_prompt = t.prefill ? t.n : 0;
      row.n_gen = t.prefill ? 0 : t.n;
      row.threads = threads;
      if (opts.on_progress) {
        opts.on_progress(row.test + " @ " + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s") +
                         ": 1 warm-up + " + std::to_string(opts.repetitions) + " runs");
      }
      const std::vector<int32_t> ids = random_tokens(t.n, cfg.n_vocab, opts.seed + static_cast<uint64_t>(t.n));
      for (int32_t r = 0; r <= opts.repetitions; ++r) {
        const double tps = t.prefill ? time_prefill(model, ids, opts.block_size, pool, out)
                                     : time_decode(model, start_token, ids, opts.block_size, pool, out);
        if (r > 0) row.tps.push_back(tps);  // run 0 is the warm-up
      }
      summarize(row.tps, row.mean, row.stddev, row.median);
      if (!t.prefill) row.bytes_per_token = decode_bytes_per_token(model, tg_mean_context(t.n)).total();
      rep.rows.push_back(std::move(row));
    }
  }
  // NOTE: taken before the bandwidth probe, whose buffer would otherwise dominate the peak.
  rep.peak_rss_bytes = peak_rss_bytes();

  if (opts.roofline) {
    const size_t bytes = opts.roofline_buffer_bytes > 0 ? opts.roofline_buffer_bytes : default_bandwidth_buffer_bytes();
    for (int32_t threads : opts.threads) {
      const std::string on = " @ " + std::to_string(threads) + " thread" + (threads == 1 ? "" : "s");
      if (opts.on_progress) {
        opts.on_progress("read bandwidth" + on + ": " + std::to_string(opts.roofline_passes) + " passes over " +
                         std::to_string(bytes >> 20) + " MiB");
      }
      ThreadPool pool(threads);
      ReadProbe probe(pool, bytes);
      const BandwidthResult bw = probe_passes(pool, probe, opts.roofline_passes);
      for (BenchRow& row : rep.rows) {
        if (row.threads != threads || row.n_gen == 0 || row.bytes_per_token <= 0) continue;
        row.limit_tps = bw.best_gbs * 1e9 / row.bytes_per_token;
        if (opts.on_progress) {
          opts.on_progress(row.test + on + ", each run between two probe passes: " +
                           std::to_string(opts.repetitions) + " runs");
        }
        const std::vector<int32_t> ids =
            random_tokens(row.n_gen, cfg.n_vocab, opts.seed + static_cast<uint64_t>(row.n_gen));
        for (int32_t r = 0; r < opts.repetitions; ++r) {
          const double g0 = probe.pass(pool);
          const double tps = time_decode(model, start_token, ids, opts.block_size, pool, out);
          const double g1 = probe.pass(pool);
          if (g0 + g1 > 0) row.paired_pct.push_back(100.0 * tps * row.bytes_per_token / (0.5 * (g0 + g1) * 1e9));
        }
        double mean = 0, sd = 0;
        summarize(row.paired_pct, mean, sd, row.paired_pct_median);
      }
      rep.bandwidth.push_back(bw);
    }
  }
  return rep;
}

size_t default_bandwidth_buffer_bytes() {
  const size_t gib = size_t{1} << 30;
  const size_t l3 = l3_cache_bytes();
  return l3 > 0 ? std::min(gib, 4 * l3) : gib;
}

ReadProbe::ReadProbe(ThreadPool& pool, size_t bytes) : n_words_(bytes / 64 * 8) {
  if (n_words_ == 0) return;
  buf_.reset(new uint64_t[n_words_]);
  uint64_t* p = buf_.get();
  // First touch on the threads that will read (pages land near them).
  pool.parallel_for(static_cast<int64_t>(n_words_), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) p[i] = static_cast<uint64_t>(i);
  });
  // With or without software prefetch: whichever of two passes each reads faster here (read_words).
  prefetch_ = true;
  const double with = std::max(pass(pool), pass(pool));
  prefetch_ = false;
  const double without = std::max(pass(pool), pass(pool));
  prefetch_ = with > without;
}

double ReadProbe::pass(ThreadPool& pool) {
  if (n_words_ == 0) return 0.0;
  std::vector<uint64_t> sums(static_cast<size_t>(pool.n_threads()), 0);
  const uint64_t* p = buf_.get();
  const auto t0 = Clock::now();
  pool.parallel_for(static_cast<int64_t>(n_words_),
                    [&](int64_t b, int64_t e, int t) { sums[static_cast<size_t>(t)] = read_words(p + b, e - b, prefetch_); });
  const double s = seconds_since(t0);
  uint64_t x = 0;
  for (uint64_t v : sums) x ^= v;
  g_sink = g_sink ^ x;
  return s > 0 ? static_cast<double>(bytes()) / s / 1e9 : 0.0;
}

BandwidthResult measure_read_bandwidth(ThreadPool& pool, size_t bytes, int32_t passes) {
  ReadProbe probe(pool, bytes);
  return probe_passes(pool, probe, passes);
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace llmopt
