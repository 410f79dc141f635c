// `llmopt eval`: a base model and variants of it (e.g. quantized copies) side by side on one text:
// size, compression, bits per weight, perplexity, Δppl, KL divergence from the base, top-1
// agreement and pp/tg speed; a markdown table (default) or a JSON array on stdout, progress on stderr.
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "core/mmap_file.h"
#include "runtime/eval.h"

namespace llmopt::cli {

Command register_eval(CLI::App& app) {
  struct Args {
    std::vector<std::string> models;
    std::string tokenizer;
    std::string file;
    EvalOptions opts;
    int threads = 0;
    bool json = false;
    bool no_speed = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "eval",
      "Compare a base model with variants of it on a text: file size, compression ratio, bits per weight, "
      "perplexity (llama.cpp's chunk protocol, as `llmopt perplexity`), Δppl, mean KL(P_base || P_variant), "
      "same top-1 % and pp/tg tokens/s. The first -m is the base. Δppl, KLD and top-1 come with paired "
      "standard errors over the scored positions (± s.e.): two variants whose Δppl differ by less than a few "
      "of them are not told apart by this text.");
  sub->add_option("-m,--model", args->models,
                  "Model (repeat: the first is the base, the others are compared with it): .gguf, Hugging Face "
                  "directory or llama2.c .bin")
      ->required();
  sub->add_option("--tokenizer", args->tokenizer, "Tokenizer file for llama2.c checkpoints (tokenizer.bin)");
  sub->add_option("-f,--file", args->file, "Text file to evaluate")->required();
  sub->add_option("-c,--ctx-size", args->opts.n_ctx, "Chunk size in tokens")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--chunks", args->opts.n_chunks, "Evaluate at most this many chunks (-1: all)")->capture_default_str();
  sub->add_option("-t,--threads", args->threads, "Threads (default: number of physical cores)")
      ->check(CLI::Range(0, 1024));
  sub->add_flag("--json", args->json, "Print a JSON array (one object per model) instead of the table");
  sub->add_flag("--no-speed", args->no_speed, "Skip the pp/tg speed measurement");
  return {sub, [args]() -> int {
            auto text = read_text_file(args->file);
            if (!text.ok()) return fail(text.status());
            std::vector<std::unique_ptr<Model>> loaded;
            std::vector<EvalModel> models;
            for (const std::string& path : args->models) {
              ModelArgs ma;
              ma.model = path;
              ma.tokenizer = args->tokenizer;
              auto model = load_or_report(ma);
              if (!model) return 1;
              models.push_back({model.get(), path});
              loaded.push_back(std::move(model));
            }
            EvalOptions opts = args->opts;
            opts.threads = resolve_threads(args->threads);
            opts.speed = !args->no_speed;
            const bool tty = isatty(fileno(stderr));
            EvalProgress progress;
            progress.on_chunk = [tty](int32_t done, int32_t total) {
              std::fprintf(stderr, tty ? "\r[%d/%d] chunks" : "[%d/%d] chunks\n", done, total);
              if (tty && done == total) std::fputc('\n', stderr);
              std::fflush(stderr);
            };
            progress.on_line = [](const std::string& line) {
              std::fprintf(stderr, "speed: %s\n", line.c_str());
              std::fflush(stderr);
            };
            auto rows = run_eval(models, *text, opts, progress);
            if (!rows.ok()) return fail(rows.status());
            const std::string out = args->json ? format_eval_json(*rows) : format_eval_table(*rows);
            std::fwrite(out.data(), 1, out.size(), stdout);
            return 0;
          }};
}

}  // namespace llmopt::cli
