// `llmopt serve-bench`: replays a workload through the batching engine (no HTTP) and prints
// throughput, latency percentiles, KV utilization, preemptions and prefix-cache hits. --compare runs
// the same workload through continuous batching on paged KV, static batching on contiguous KV and
// one request at a time, in one invocation, and prints one table.
#include <cmath>
#include <cstdio>

#include "cli/common.h"
#include "model/loader.h"
#include "runtime/serve_bench.h"

namespace llmopt::cli {
namespace {

// "512M", "2G", "1.5GiB", "1000000" (bytes).
Result<int64_t> parse_size(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (...) {
    return error("--kv-mem '" + s + "' is not a size (e.g. 512M, 2G)");
  }
  std::string unit = s.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB")
    mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MIB")
    mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GIB")
    mul = 1024.0 * 1024 * 1024;
  else
    return error("--kv-mem '" + s + "': unknown unit '" + unit + "' (use K, M or G)");
  const double bytes = v * mul;
  if (!std::isfinite(bytes) || bytes <= 0 || bytes > 1e13)
    return error("--kv-mem '" + s + "' is not a usable size");
  return static_cast<int64_t>(bytes);
}

}  // namespace

Command register_serve_bench(CLI::App& app) {
  struct Args {
    ModelArgs model;
    int32_t n_requests = 64;
    std::string prompt_len = "128";
    std::string output_len = "128";
    std::string workload_file;
    double rate = 0;
    int32_t shared_prefix = 0;
    std::string kv_mem;
    int32_t kv_tokens = 0;
    int32_t block_size = 16;
    int32_t max_batch_tokens = 512;
    int32_t max_seqs = 16;
    int32_t max_waiting = 4096;
    int32_t n_ctx = 0;
    std::string batching = "continuous";
    std::string kv = "paged";
    bool no_prefix_cache = false;
    bool compare = false;
    int32_t rounds = 1;
    uint64_t seed = 1;
    std::string output = "md";
    int32_t spec_ngram = 0;
    int32_t spec_k = 4;
    std::string spec_draft;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "serve-bench", "Replay a request workload through the batching engine: throughput, latency, KV use");
  add_model_args(sub, args->model);
  sub->add_option("-n,--requests", args->n_requests, "Number of requests")->capture_default_str();
  sub->add_option("--prompt-len", args->prompt_len,
                  "Prompt tokens per request: N, LO:HI (uniform) or a list A,B,C cycled over requests")
      ->capture_default_str();
  sub->add_option("--output-len", args->output_len, "Output tokens per request (same forms as --prompt-len)")
      ->capture_default_str();
  sub->add_option("--workload", args->workload_file,
                  "File of 'PROMPT_LEN OUTPUT_LEN' lines (overrides the above)");
  sub->add_option("--rate", args->rate, "Poisson arrivals in requests/s (0: all at once)")
      ->capture_default_str();
  sub->add_option("--shared-prefix", args->shared_prefix,
                  "Tokens of a common prefix (system prompt) before each prompt")
      ->capture_default_str();
  sub->add_option("--kv-mem", args->kv_mem,
                  "KV cache memory budget, e.g. 512M, 2G (default: --max-seqs full contexts); committed in full "
                  "when the engine starts, so that no request waits on page faults");
  sub->add_option("--kv-tokens", args->kv_tokens,
                  "KV cache budget as a number of token slots (instead of --kv-mem)");
  sub->add_option("--block-size", args->block_size, "KV block size in tokens")->capture_default_str();
  sub->add_option("--max-batch-tokens", args->max_batch_tokens, "Tokens computed per engine step")
      ->capture_default_str();
  sub->add_option("--max-seqs", args->max_seqs, "Requests in the running batch at most")
      ->capture_default_str();
  sub->add_option("--max-waiting", args->max_waiting, "Bound of the waiting queue")->capture_default_str();
  sub->add_option("-c,--ctx", args->n_ctx, "Context per request (default: the model's, at most 2048)");
  sub->add_option("--batching", args->batching, "continuous or static")->capture_default_str();
  sub->add_option("--kv", args->kv, "paged, or contiguous (reserves the whole context per request)")
      ->capture_default_str();
  sub->add_flag("--no-prefix-cache", args->no_prefix_cache, "Disable prefix caching");
  sub->add_flag("--compare", args->compare,
                "Run continuous+paged, static+contiguous and one-at-a-time (and no-prefix-cache with "
                "--shared-prefix) on the same workload and KV budget; one table");
  sub->add_option("--rounds", args->rounds,
                  "Run the modes round-robin this many times; the table shows each mode's median-throughput "
                  "round and the ratios are taken within each round, then their median (machine-speed drift "
                  "between modes cancels)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub->add_option("--seed", args->seed, "Workload seed")->capture_default_str();
  sub->add_option("--spec-ngram", args->spec_ngram,
                  "Every request speculates with prompt-lookup drafts (n-grams up to N tokens; 0: off)")
      ->check(CLI::Range(0, 16));
  sub->add_option("--spec-draft", args->spec_draft,
                  "Every request speculates with this draft model (same vocabulary; its own KV per request)");
  sub->add_option("--spec-k", args->spec_k, "Drafted tokens per request and step (with --spec-ngram / --spec-draft)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  sub->add_option("-o,--output", args->output, "Output format: md or json")->capture_default_str();
  return {sub, [args]() -> int {
            if (args->output != "md" && args->output != "json")
              return fail("-o " + args->output + " is not md or json");
            EngineConfig base;
            if (args->batching == "continuous")
              base.sched.batching = BatchingMode::kContinuous;
            else if (args->batching == "static")
              base.sched.batching = BatchingMode::kStatic;
            else
              return fail("--batching " + args->batching + " is not continuous or static");
            if (args->kv == "paged")
              base.sched.kv_layout = KvLayout::kPaged;
            else if (args->kv == "contiguous")
              base.sched.kv_layout = KvLayout::kContiguous;
            else
              return fail("--kv " + args->kv + " is not paged or contiguous");
            if (!args->kv_mem.empty()) {
              auto bytes = parse_size(args->kv_mem);
              if (!bytes.ok()) return fail(bytes.status());
              base.kv_mem_bytes = *bytes;
            }
            if (args->kv_tokens < 0) return fail("--kv-tokens must not be negative");
            if (args->n_requests <= 0) return fail("--requests must be positive");
            base.kv_tokens = args->kv_tokens;
            base.block_size = args->block_size;
            base.sched.max_batch_tokens = args->max_batch_tokens;
            base.sched.max_running = args->max_seqs;
            base.sched.max_waiting = args->max_waiting;
            base.prefix_caching = !args->no_prefix_cache;

            WorkloadSpec ws;
            ws.n_requests = args->n_requests;
            ws.rate = args->rate;
            ws.shared_prefix = args->shared_prefix;
            ws.seed = args->seed;
            if (!args->workload_file.empty()) {
              auto f = read_workload_file(args->workload_file);
              if (!f.ok()) return fail(f.status());
              ws.from_file = std::move(f).value();
            } else {
              auto p = parse_length_spec(args->prompt_len);
              if (!p.ok()) return fail("--prompt-len: " + p.status().message());
              auto o = parse_length_spec(args->output_len);
              if (!o.ok()) return fail("--output-len: " + o.status().message());
              ws.prompt_len = *p;
              ws.output_len = *o;
            }

            auto model = load_or_report(args->model, /*require_tokenizer=*/false);
            if (!model) return 1;
            const int32_t n_ctx = args->n_ctx > 0 ? args->n_ctx : std::min(model->config().n_ctx_train, 2048);
            base.n_ctx = n_ctx;
            auto workload = make_workload(ws, *model, n_ctx);
            if (!workload.ok()) return fail(workload.status());
            ThreadPool pool(resolve_threads(args->model.threads));

            std::vector<std::pair<std::string, EngineConfig>> runs;
            if (!args->compare) {
              std::string label = args->batching + " + " + args->kv;
              if (args->no_prefix_cache) label += ", no prefix cache";
              if (args->max_seqs == 1) label = "one at a time";
              runs.emplace_back(label, base);
            } else {
              EngineConfig c = base;
              c.sched.batching = BatchingMode::kContinuous;
              c.sched.kv_layout = KvLayout::kPaged;
              c.prefix_caching = true;
              runs.emplace_back("continuous + paged", c);
              if (args->shared_prefix > 0) {
                EngineConfig np = c;
                np.prefix_caching = false;
                runs.emplace_back("continuous + paged, no prefix cache", np);
              }
              EngineConfig st = base;
              st.sched.batching = BatchingMode::kStatic;
              st.sched.kv_layout = KvLayout::kContiguous;
              runs.emplace_back("static + contiguous", st);
              EngineConfig one = c;
              one.sched.max_running = 1;
              one.prefix_caching = false;
              runs.emplace_back("one at a time", one);
            }
            std::fprintf(stderr, "serve-bench: %s, %zu requests, context %d, %d threads\n",
                         args->model.model.c_str(), workload->size(), n_ctx, pool.n_threads());
            ServeSpec speculation;
            speculation.ngram = args->spec_ngram;
            speculation.k = args->spec_k;
            if (!args->spec_draft.empty()) {
              LoadOptions dlo;
              dlo.repack = true;
              auto d = load_model(args->spec_draft, dlo);
              if (!d.ok()) return fail(d.status().with_context(args->spec_draft));
              speculation.draft = std::shared_ptr<const Model>(std::move(*d));
            }
            // by_mode[m][round]; the modes alternate within each round.
            std::vector<std::vector<ServeBenchResult>> by_mode(runs.size());
            for (int32_t round = 0; round < args->rounds; ++round) {
              for (size_t m = 0; m < runs.size(); ++m) {
                const auto& [label, cfg] = runs[m];
                std::fprintf(stderr, "  running: %s%s ...\n", label.c_str(),
                             args->rounds > 1 ? (" (round " + std::to_string(round + 1) + ")").c_str() : "");
                auto r = run_serve_bench(*model, cfg, *workload, pool, label, speculation);
                if (!r.ok()) return fail(label + ": " + r.status().message());
                std::fprintf(stderr, "  %s: %.1f s, %.1f output tok/s\n", label.c_str(), r->seconds,
                             r->output_tps());
                by_mode[m].push_back(std::move(r).value());
              }
            }
            std::vector<ServeBenchResult> rows;
            for (const auto& rounds : by_mode) rows.push_back(median_throughput_round(rounds));
            if (args->output == "json") {
              std::fputs(serve_bench_json(rows).c_str(), stdout);
            } else {
              std::fputs(serve_bench_markdown(rows).c_str(), stdout);
              if (args->rounds > 1) {
                std::printf("\n(each mode's median-throughput round of %d)\n", args->rounds);
              }
              if (rows.size() > 1) {
                std::printf("\n");
                for (size_t i = 1; i < rows.size(); ++i) {
                  const RoundRatios rr = round_ratios(by_mode[0], by_mode[i]);
                  std::printf("%s vs %s: %.2fx output throughput, %.2fx lower mean TTFT", rows[0].label.c_str(),
                              rows[i].label.c_str(), rr.median_throughput, rr.median_ttft);
                  if (args->rounds > 1) {
                    std::printf(" (medians of %d rounds; throughput per round:", args->rounds);
                    for (double x : rr.throughput) std::printf(" %.2fx", x);
                    std::printf(")");
                  }
                  std::printf("\n");
                }
              }
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
