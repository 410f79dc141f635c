// `llmopt perplexity`: llama.cpp's chunk protocol by default, per-document with --doc-sep.
#include <unistd.h>

#include <cstdio>

#include "cli/common.h"
#include "core/mmap_file.h"
#include "runtime/perplexity.h"

namespace llmopt::cli {

Command register_perplexity(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::string file;
    PerplexityOptions opts;
    std::string doc_sep;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text file. Default: llama.cpp's protocol (non-overlapping chunks of CTX "
      "tokens, BOS first, the second half of each chunk scored). With --doc-sep: each document scored from BOS "
      "with full causal context, truncated to CTX.");
  add_model_args(sub, args->model);
  sub->add_option("-f,--file", args->file, "Text file to evaluate")->required();
  sub->add_option("-c,--ctx-size", args->opts.n_ctx, "Chunk / context size in tokens")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--chunks", args->opts.n_chunks, "Evaluate at most this many chunks (-1: all)")->capture_default_str();
  sub->add_option("--doc-sep", args->doc_sep,
                  "Document separator (escapes \\n and \\t understood), e.g. '\\n<|endoftext|>\\n'");
  sub->add_option("--max-docs", args->opts.max_docs, "With --doc-sep: at most this many documents (-1: all)");
  return {sub, [args]() -> int {
            auto text = read_text_file(args->file);
            if (!text.ok()) return fail(text.status());
            auto model = load_or_report(args->model);
            if (!model) return 1;
            std::string sep;
            for (size_t i = 0; i < args->doc_sep.size(); ++i) {
              if (args->doc_sep[i] == '\\' && i + 1 < args->doc_sep.size()) {
                char c = args->doc_sep[i + 1];
                if (c == 'n' || c == 't' || c == '\\') {
                  sep += c == 'n' ? '\n' : c == 't' ? '\t' : '\\';
                  ++i;
                  continue;
                }
              }
              sep += args->doc_sep[i];
            }
            PerplexityOptions opts = args->opts;
            opts.doc_sep = sep;
            ThreadPool pool(resolve_threads(args->model.threads));
            const bool tty = isatty(fileno(stderr));
            auto res = perplexity(*model, *text, opts, pool, [&](int32_t done, int32_t total, double ppl) {
              std::fprintf(stderr, tty ? "\r[%d/%d] running PPL %.4f" : "[%d/%d] running PPL %.4f\n", done, total,
                           ppl);
            });
            if (tty) std::fputc('\n', stderr);
            if (!res.ok()) return fail(res.status().with_context(args->file));
            std::printf("%s: %d %s, %lld tokens scored, mean NLL %.6f nats/token\n",
                        opts.doc_sep.empty() ? "chunks" : "documents", res->n_units,
                        opts.doc_sep.empty() ? "chunks" : "documents", static_cast<long long>(res->n_scored),
                        res->mean_nll);
            std::printf("PPL = %.4f +/- %.5f\n", res->ppl, res->ppl_stderr);
            return 0;
          }};
}

}  // namespace llmopt::cli
