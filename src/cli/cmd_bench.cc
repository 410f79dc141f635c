// `llmopt bench`: prefill (ppN) and decode (tgN) tokens/s over repetitions, like llama.cpp's
// llama-bench, as a markdown table (default), JSON or CSV on stdout; progress on stderr.
// --roofline relates each tg row to this machine's measured read bandwidth.
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "core/bytes.h"
#include "kernels/kernels.h"
#include "runtime/bench.h"

namespace llmopt::cli {

Command register_bench(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::vector<int32_t> n_prompt = {512};
    std::vector<int32_t> n_gen = {128};
    std::vector<int32_t> threads;
    int32_t reps = 5;
    std::string output = "md";
    bool roofline = false;
    std::string isa;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("bench", "Measure prefill and decode tokens/s (like llama-bench)");
  add_model_args(sub, args->model, /*with_threads=*/false);
  add_kv_type_arg(sub, args->model);
  sub->add_option("-p,--n-prompt", args->n_prompt, "Prompt lengths to time as one prefill (comma list; 0: none)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-n,--n-gen", args->n_gen, "Decode steps to time after a 1-token start (comma list; 0: none)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-t,--threads", args->threads, "Thread counts (comma list; default: physical cores)")
      ->delimiter(',');
  sub->add_option("-r,--repetitions", args->reps, "Timed runs per test, after one warm-up")->capture_default_str();
  sub->add_option("-o,--output", args->output, "Output format: md, json or csv")->capture_default_str();
  sub->add_flag("--roofline", args->roofline,
                "Measure read bandwidth and show tg as % of its limit: against the best of 5 probe passes, and "
                "paired (each tg test run again, every run between two probe passes)");
  sub->add_option("--isa", args->isa, "Kernel ISA: ref, avx2, avx512 or amx (default: the one LLMOPT_ISA names, else the CPU's default)");
  return {sub, [args]() -> int {
            BenchFormat format;
            if (args->output == "md") {
              format = BenchFormat::kMarkdown;
            } else if (args->output == "json") {
              format = BenchFormat::kJson;
            } else if (args->output == "csv") {
              format = BenchFormat::kCsv;
            } else {
              return fail("-o " + args->output + " is not a format (use md, json or csv)");
            }
            if (!args->isa.empty()) {
              kernels::Isa isa;
              if (args->isa == "ref") {
                isa = kernels::Isa::kRef;
              } else if (args->isa == "avx2") {
                isa = kernels::Isa::kAvx2;
              } else if (args->isa == "avx512") {
                isa = kernels::Isa::kAvx512;
              } else if (args->isa == "amx") {
                isa = kernels::Isa::kAmx;
              } else {
                return fail("--isa " + args->isa + " is not an ISA (use ref, avx2, avx512 or amx)");
              }
              if (!kernels::isa_supported(isa)) {
                return fail("--isa " + args->isa + " is not supported by this CPU or build");
              }
              kernels::set_isa(isa);
            }
            BenchOptions opts;
            opts.n_prompt = args->n_prompt;
            opts.n_gen = args->n_gen;
            opts.threads = args->threads.empty() ? std::vector<int32_t>{resolve_threads(0)} : args->threads;
            opts.repetitions = args->reps;
            opts.roofline = args->roofline;
            // Checked before loading so a bad flag fails fast (the model's context is checked again).
            if (opts.repetitions < 1) return fail("-r must be at least 1 (got " + std::to_string(opts.repetitions) + ")");
            for (int32_t t : opts.threads) {
              if (t < 1 || t > 1024) return fail("-t " + std::to_string(t) + " is out of range (1 to 1024 threads)");
            }
            auto model = load_or_report(args->model, /*require_tokenizer=*/false);
            if (!model) return 1;
            Status st = validate_bench_options(model->config(), opts);
            if (!st.ok()) return fail(st);
            opts.on_progress = [](const std::string& line) {
              std::fprintf(stderr, "bench: %s\n", line.c_str());
              std::fflush(stderr);
            };
            auto rep = run_bench(*model, opts);
            if (!rep.ok()) return fail(rep.status());
            rep->file_bytes = path_bytes(args->model.model);
            const std::string text = format_bench(*rep, format);
            std::fwrite(text.data(), 1, text.size(), stdout);
            return 0;
          }};
}

}  // namespace llmopt::cli
