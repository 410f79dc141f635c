// serve-bench: workload generation, the real-time replay loop, latency statistics and reports.
#include "runtime/serve_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "core/check.h"

namespace llmopt {
namespace {

using Clock = std::chrono::steady_clock;

Result<int32_t> parse_positive(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    return error(what + " '" + s + "' is not a positive integer");
  }
  const int32_t v = std::stoi(s);
  if (v <= 0) return error(what + " must be positive");
  return v;
}

int32_t draw(const LengthSpec& l, int32_t i, std::mt19937_64& rng) {
  if (!l.cycle.empty()) return l.cycle[static_cast<size_t>(i) % l.cycle.size()];
  if (l.lo == l.hi) return l.lo;
  return std::uniform_int_distribution<int32_t>(l.lo, l.hi)(rng);
}

std::string sb_fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

int32_t LengthSpec::max() const {
  if (!cycle.empty()) return *std::max_element(cycle.begin(), cycle.end());
  return hi;
}

Result<LengthSpec> parse_length_spec(const std::string& s) {
  LengthSpec l;
  const std::string what = "length";
  if (s.find(',') != std::string::npos) {
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
      LLMOPT_ASSIGN_OR_RETURN(int32_t v, parse_positive(part, what));
      l.cycle.push_back(v);
    }
    return l;
  }
  if (auto colon = s.find(':'); colon != std::string::npos) {
    LLMOPT_ASSIGN_OR_RETURN(l.lo, parse_positive(s.substr(0, colon), what));
    LLMOPT_ASSIGN_OR_RETURN(l.hi, parse_positive(s.substr(colon + 1), what));
    if (l.lo > l.hi) return error("length range " + s + " is empty (low > high)");
    return l;
  }
  LLMOPT_ASSIGN_OR_RETURN(l.lo, parse_positive(s, what));
  l.hi = l.lo;
  return l;
}

Result<std::vector<std::pair<int32_t, int32_t>>> read_workload_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(path + ": cannot open the workload file");
  std::vector<std::pair<int32_t, int32_t>> out;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::stringstream ss(line);
    std::string a, b, extra;
    if (!(ss >> a)) continue;
    if (!(ss >> b) || (ss >> extra)) {
      return error(path + ":" + std::to_string(n) + ": expected two numbers: PROMPT_LEN OUTPUT_LEN");
    }
    auto p = parse_positive(a, "prompt length");
    auto o = parse_positive(b, "output length");
    if (!p.ok()) return error(path + ":" + std::to_string(n) + ": " + p.status().message());
    if (!o.ok()) return error(path + ":" + std::to_string(n) + ": " + o.status().message());
    out.emplace_back(*p, *o);
  }
  if (out.empty()) return error(path + ": the workload file has no requests");
  return out;
}

Result<std::vector<WorkloadRequest>> make_workload(const WorkloadSpec& spec, const Model& model,
                                                   int32_t n_ctx) {
  const int32_t n = spec.from_file.empty() ? spec.n_requests : static_cast<int32_t>(spec.from_file.size());
  if (n <= 0) return error("the workload needs at least one request");
  if (spec.rate < 0 || !std::isfinite(spec.rate)) return error("the arrival rate must be >= 0 requests/s");
  if (spec.shared_prefix < 0) return error("the shared prefix length must not be negative");
  std::mt19937_64 rng(spec.seed);
  const int32_t n_vocab = model.config().n_vocab;
  const int32_t bos = model.has_tokenizer() ? model.tokenizer().bos() : -1;
  auto random_token = [&] { return static_cast<int32_t>(rng() % static_cast<uint64_t>(n_vocab)); };
  std::vector<int32_t> prefix;
  if (bos >= 0) prefix.push_back(bos);
  for (int32_t i = 0; i < spec.shared_prefix; ++i) prefix.push_back(random_token());

  std::vector<WorkloadRequest> out(static_cast<size_t>(n));
  double t = 0.0;
  std::exponential_distribution<double> gap(spec.rate > 0 ? spec.rate : 1.0);
  for (int32_t i = 0; i < n; ++i) {
    WorkloadRequest& r = out[static_cast<size_t>(i)];
    int32_t p_len, o_len;
    if (!spec.from_file.empty()) {
      p_len = spec.from_file[static_cast<size_t>(i)].first;
      o_len = spec.from_file[static_cast<size_t>(i)].second;
    } else {
      p_len = draw(spec.prompt_len, i, rng);
      o_len = draw(spec.output_len, i, rng);
    }
    r.prompt =
        spec.shared_prefix > 0 ? prefix : (bos >= 0 ? std::vector<int32_t>{bos} : std::vector<int32_t>{});
    for (int32_t k = 0; k < p_len; ++k) r.prompt.push_back(random_token());
    r.max_new = o_len;
    const int64_t total = static_cast<int64_t>(r.prompt.size()) + o_len;
    if (total > n_ctx) {
      return error("request " + std::to_string(i) + " needs " + std::to_string(total) + " tokens (prompt " +
                   std::to_string(r.prompt.size()) + " + output " + std::to_string(o_len) +
                   "), more than the context of " + std::to_string(n_ctx));
    }
    if (spec.rate > 0 && i > 0) t += gap(rng);
    r.arrival = t;
  }
  return out;
}

LatencySummary summarize(std::vector<double> v) {
  LatencySummary s;
  s.n = static_cast<int64_t>(v.size());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  // Nearest-rank percentiles.
  auto pct = [&](double p) {
    const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, rank > 0 ? rank - 1 : 0)];
  };
  s.p50 = pct(50);
  s.p90 = pct(90);
  s.p99 = pct(99);
  return s;
}

Result<ServeBenchResult> run_serve_bench(const Model& model, const EngineConfig& config,
                                         const std::vector<WorkloadRequest>& workload, ThreadPool& pool,
                                         const std::string& label, const ServeSpec& speculation) {
  LLMOPT_ASSIGN_OR_RETURN(auto engine, Engine::create(model, config, pool));
  struct Track {
    double arrival = 0;
    std::vector<double> token_times;
  };
  std::vector<Track> tracks(workload.size());
  ServeBenchResult res;
  res.label = label;
  res.n_requests = static_cast<int32_t>(workload.size());
  res.kv_bytes = engine->kv_bytes();

  const auto t0 = Clock::now();
  auto now = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  size_t next = 0;
  while (next < workload.size() || engine->has_unfinished()) {
    const double t = now();
    while (next < workload.size() && workload[next].arrival <= t) {
      const WorkloadRequest& w = workload[next];
      RequestSpec spec;
      spec.prompt = w.prompt;
      spec.max_new_tokens = w.max_new;
      spec.sampling.temperature = 0.0f;
      spec.ignore_eos = true;
      spec.spec_ngram = speculation.ngram;
      spec.spec_k = speculation.k;
      spec.spec_draft_model = speculation.draft;
      Track* tr = &tracks[next];
      tr->arrival = std::max(w.arrival, 0.0);
      auto id = engine->add_request(std::move(spec), [tr, &now](const TokenEvent& ev) {
        if (ev.token >= 0) tr->token_times.push_back(now());
      });
      if (!id.ok()) return error("request " + std::to_string(next) + ": " + id.status().message());
      res.prompt_tokens += static_cast<int64_t>(w.prompt.size());
      ++next;
    }
    if (engine->has_unfinished()) {
      engine->step();
    } else if (next < workload.size()) {
      const double wait = workload[next].arrival - now();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
  }
  res.seconds = now();

  std::vector<double> ttft, tpot, itl, e2e;
  for (const Track& tr : tracks) {
    if (tr.token_times.empty()) continue;
    res.output_tokens += static_cast<int64_t>(tr.token_times.size());
    ttft.push_back(tr.token_times.front() - tr.arrival);
    e2e.push_back(tr.token_times.back() - tr.arrival);
    if (tr.token_times.size() > 1) {
      tpot.push_back((tr.token_times.back() - tr.token_times.front()) /
                     static_cast<double>(tr.token_times.size() - 1));
      for (size_t k = 1; k < tr.token_times.size(); ++k)
        itl.push_back(tr.token_times[k] - tr.token_times[k - 1]);
    }
  }
  res.ttft = summarize(ttft);
  res.tpot = summarize(tpot);
  res.itl = summarize(itl);
  res.e2e = summarize(e2e);
  const EngineMetrics& m = engine->metrics();
  res.kv_utilization = m.kv_utilization();
  res.preemptions = m.preemptions;
  res.prefix_hit_rate = m.prefix_query_tokens > 0 ? static_cast<double>(m.prefix_hit_tokens) /
                                                        static_cast<double>(m.prefix_query_tokens)
                                                  : 0.0;
  res.mean_tokens_per_step = m.tokens_per_step.mean();
  res.spec_drafted = m.spec_drafted_tokens;
  res.spec_accepted = m.spec_accepted_tokens;
  return res;
}

ServeBenchResult median_throughput_round(const std::vector<ServeBenchResult>& rounds) {
  LLMOPT_CHECK(!rounds.empty());
  std::vector<size_t> order(rounds.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return rounds[x].output_tps() < rounds[y].output_tps(); });
  return rounds[order[(order.size() - 1) / 2]];
}

namespace {
double median_of(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

RoundRatios round_ratios(const std::vector<ServeBenchResult>& a, const std::vector<ServeBenchResult>& b) {
  LLMOPT_CHECK(a.size() == b.size());
  RoundRatios r;
  for (size_t i = 0; i < a.size(); ++i) {
    r.throughput.push_back(a[i].output_tps() / std::max(b[i].output_tps(), 1e-9));
    r.ttft.push_back(b[i].ttft.mean / std::max(a[i].ttft.mean, 1e-9));
  }
  r.median_throughput = median_of(r.throughput);
  r.median_ttft = median_of(r.ttft);
  return r;
}

std::string serve_bench_markdown(const std::vector<ServeBenchResult>& rows) {
  std::string s =
      "| mode | req/s | out tok/s | TTFT mean / p50 / p99 (ms) | TPOT mean (ms) | ITL p50 / p99 (ms) | "
      "E2E mean / p99 (s) | KV util | preempt | prefix hit | tok/step |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : rows) {
    s += "| " + r.label + " | " + sb_fmt("%.2f", r.request_throughput()) + " | " + sb_fmt("%.1f", r.output_tps()) +
         " | " + sb_fmt("%.0f", r.ttft.mean * 1e3) + " / " + sb_fmt("%.0f", r.ttft.p50 * 1e3) + " / " +
         sb_fmt("%.0f", r.ttft.p99 * 1e3) + " | " + sb_fmt("%.1f", r.tpot.mean * 1e3) + " | " +
         sb_fmt("%.1f", r.itl.p50 * 1e3) + " / " + sb_fmt("%.1f", r.itl.p99 * 1e3) + " | " +
         sb_fmt("%.2f", r.e2e.mean) + " / " + sb_fmt("%.2f", r.e2e.p99) + " | " +
         sb_fmt("%.1f%%", r.kv_utilization * 100) + " | " + std::to_string(r.preemptions) + " | " +
         sb_fmt("%.1f%%", r.prefix_hit_rate * 100) + " | " + sb_fmt("%.1f", r.mean_tokens_per_step) + " |\n";
  }
  return s;
}

std::string serve_bench_json(const std::vector<ServeBenchResult>& rows) {
  nlohmann::json arr = nlohmann::json::array();
  auto lat = [](const LatencySummary& l) {
    return nlohmann::json{{"mean", l.mean}, {"p50", l.p50}, {"p90", l.p90}, {"p99", l.p99}, {"n", l.n}};
  };
  for (const auto& r : rows) {
    arr.push_back({{"mode", r.label},
                   {"requests", r.n_requests},
                   {"seconds", r.seconds},
                   {"request_throughput", r.request_throughput()},
                   {"output_tokens_per_s", r.output_tps()},
                   {"total_tokens_per_s", r.total_tps()},
                   {"output_tokens", r.output_tokens},
                   {"prompt_tokens", r.prompt_tokens},
                   {"ttft_s", lat(r.ttft)},
                   {"tpot_s", lat(r.tpot)},
                   {"itl_s", lat(r.itl)},
                   {"e2e_s", lat(r.e2e)},
                   {"kv_utilization", r.kv_utilization},
                   {"kv_bytes", r.kv_bytes},
                   {"preemptions", r.preemptions},
                   {"prefix_hit_rate", r.prefix_hit_rate},
                   {"mean_tokens_per_step", r.mean_tokens_per_step},
                   {"spec_drafted_tokens", r.spec_drafted},
                   {"spec_accepted_tokens", r.spec_accepted}});
  }
  return arr.dump(2) + "\n";
}

}  // namespace llmopt
