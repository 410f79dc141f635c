// `llmopt generate`: the continuation of a prompt on stdout, speeds on stderr.
#include <cstdio>

#include "cli/common.h"
#include "cli/spec_args.h"
#include "runtime/generate.h"
#include "runtime/spec/spec_decode.h"

namespace llmopt::cli {

Command register_generate(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::string prompt;
    int n_predict = 128;
    int n_ctx = 0;
    SamplingParams sampling;
    bool no_kv_cache = false;
    bool ignore_eos = false;
    bool no_bos = false;
    std::vector<std::string> stop;
    SpecArgs spec;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("generate", "Generate a continuation of a prompt");
  add_model_args(sub, args->model);
  sub->add_option("-p,--prompt", args->prompt, "Prompt text (empty: start from BOS)");
  sub->add_option("-n,--n-predict", args->n_predict, "Tokens to generate (-1: until EOS or full context)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1 << 30));
  sub->add_option("-c,--ctx-size", args->n_ctx, "Context size in tokens (0: the model's)")->check(CLI::Range(0, 1 << 24));
  sub->add_option("--temp", args->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", args->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", args->sampling.top_p, "Top-p nucleus (1: off)")->capture_default_str();
  sub->add_option("--min-p", args->sampling.min_p, "Min-p relative to the top token (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", args->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", args->sampling.repeat_last_n, "Tokens the penalty looks back over")
      ->capture_default_str();
  sub->add_option("-s,--seed", args->sampling.seed, "Random seed (same seed, same output)")->capture_default_str();
  sub->add_option("--stop", args->stop, "Stop when this text is generated (repeatable)");
  sub->add_flag("--no-kv-cache", args->no_kv_cache, "Recompute the whole prefix every step (baseline)");
  sub->add_flag("--ignore-eos", args->ignore_eos, "Keep generating after the end-of-sequence token");
  sub->add_flag("--no-bos", args->no_bos, "Do not put BOS before the prompt");
  add_spec_args(sub, args->spec);
  return {sub, [args]() -> int {
            auto model = load_or_report(args->model);
            if (!model) return 1;
            const Tokenizer& tok = model->tokenizer();
            std::vector<int32_t> prompt = tok.encode(args->prompt, !args->no_bos && tok.add_bos_default());
            GenerateOptions opts;
            opts.n_predict = args->n_predict;
            opts.n_ctx = args->n_ctx;
            opts.sampling = args->sampling;
            opts.kv_cache = !args->no_kv_cache;
            opts.ignore_eos = args->ignore_eos;
            opts.stop = args->stop;
            ThreadPool pool(resolve_threads(args->model.threads));
            const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : model->config().n_ctx_train;
            auto drafter = make_drafter(args->spec, *model, n_ctx, opts.sampling.seed + 1, pool);
            if (!drafter.ok()) return fail(drafter.status());
            auto stream = [](const std::string& piece) {
              std::fwrite(piece.data(), 1, piece.size(), stdout);
              std::fflush(stdout);
              return true;
            };
            SpecStats spec_stats;
            Result<GenerateResult> res =
                *drafter ? generate_speculative(*model, **drafter, prompt, opts, SpecOptions{args->spec.k, args->spec.adaptive},
                                                pool, &spec_stats, stream)
                         : generate(*model, prompt, opts, pool, stream);
            if (!res.ok()) return fail(res.status().with_context(args->model.model));
            std::fputc('\n', stdout);
            const GenerateStats& st = res->stats;
            std::fprintf(stderr, "prompt: %d tokens, %.1f tokens/s | generation: %d tokens, %.1f tokens/s | stop: %s%s\n",
                         st.n_prompt, st.prompt_tps(), st.n_generated, st.gen_tps(), res->stop_reason.c_str(),
                         opts.kv_cache ? "" : " | KV cache off");
            if (*drafter) {
              std::fprintf(stderr,
                           "speculative (%s, k %s%d): %lld drafted, %lld accepted (%.1f%%), %.2f tokens per target "
                           "pass, %lld target passes\n",
                           (*drafter)->name().c_str(), args->spec.adaptive ? "<= " : "", args->spec.k,
                           static_cast<long long>(spec_stats.drafted), static_cast<long long>(spec_stats.accepted),
                           100.0 * spec_stats.acceptance_rate(), spec_stats.tokens_per_pass(),
                           static_cast<long long>(spec_stats.target_passes));
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
