// `llmopt demo` (what `make run` runs, on SmolLM2-135M-Instruct): the optimization story of one model —
// KV cache on vs off, weight types (size, perplexity, speed), speculative decoding, batched serving
// and a chat answer. Without -m it synthesizes a small GPT-2-shaped model with random weights.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli/common.h"
#include "cli/demo_sections.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/synth.h"
#include "runtime/generate.h"

namespace llmopt::cli {
namespace {

// The built-in default until a real built-in model exists: GPT-2 layout, small enough for seconds.
ModelConfig demo_config() {
  ModelConfig c = *find_synth_preset("gpt2-124M");
  c.name = "gpt2-demo (random weights)";
  c.n_embd = 384;
  c.n_layer = 6;
  c.n_head = 6;
  c.n_head_kv = 6;
  c.head_dim = 64;
  c.n_ff = 1536;
  c.n_ctx_train = 1024;
  c.n_vocab = 4096;
  return c;
}

std::string demo_read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

Command register_demo(CLI::App& app) {
  struct Args {
    std::string model;
    std::string tokenizer;
    int threads = 0;
    int n_predict = 64;
    bool no_types = false;
    std::string text = "data/demo/eval.txt";
    std::string draft;
    std::string prompt =
        "Once upon a time, in a small town by the sea, there lived an old clockmaker who repaired every clock in "
        "town and listened to the stories people told while they waited.";
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "demo", "Generate with and without the KV cache and report size and speed (default: a built-in model)");
  sub->add_option("-m,--model", args->model, "Model file or directory (default: synthesize a random GPT-2-shaped model)");
  sub->add_option("--tokenizer", args->tokenizer, "Tokenizer file for llama2.c checkpoints");
  sub->add_option("-t,--threads", args->threads, "Threads (default: physical cores)");
  sub->add_option("-n,--n-predict", args->n_predict, "Tokens to generate per run")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("-p,--prompt", args->prompt, "Prompt");
  sub->add_option("--draft", args->draft, "Draft model for the speculative-decoding section (e.g. the distilled "
                  "models/smollm2-draft/smollm2-draft.f16.gguf)");
  sub->add_flag("--no-types", args->no_types, "Skip everything after the KV-cache table");
  sub->add_option("--text", args->text, "Text for the perplexity column (skipped when the file is missing)")
      ->capture_default_str();
  return {sub, [args]() -> int {
            std::string path = args->model;
            if (path.empty()) {
              std::printf("No model given: synthesizing a small GPT-2-shaped model with RANDOM weights.\n"
                          "Sizes and speeds are real; the generated text is meaningless.\n"
                          "Run `make run MODEL=path` (or `llmopt demo -m path`) on a real model file.\n\n");
              SynthOptions so;
              so.config = demo_config();
              so.seed = 7;
              auto src = synth_model(so);
              if (!src.ok()) return fail(src.status());
              path = (std::filesystem::temp_directory_path() / "llmopt-demo-gpt2.gguf").string();
              ConvertOptions co;
              co.outtype = DType::kF32;
              Status st = write_gguf_model(**src, path, co);
              if (!st.ok()) return fail(st);
            }
            LoadOptions lo;
            lo.tokenizer_path = args->tokenizer;
            lo.repack = true;
            auto loaded = load_model(path, lo);
            if (!loaded.ok()) return fail(loaded.status());
            const Model& model = **loaded;
            const ModelConfig& c = model.config();
            int64_t params = 0;
            for (const auto& t : model.source().tensors()) params += t.view.numel();
            std::printf("model: %s  (%s, %d layers, n_embd %d, %d heads, vocab %d)\n", path.c_str(), arch_name(c.arch),
                        c.n_layer, c.n_embd, c.n_head, c.n_vocab);
            std::printf("parameters: %.2f M   weights: %s\n\n", static_cast<double>(params) / 1e6,
                        human_bytes(static_cast<double>(model.weight_bytes())).c_str());

            const Tokenizer& tok = model.tokenizer();
            std::vector<int32_t> prompt = tok.encode(args->prompt, tok.add_bos_default());
            const int threads = resolve_threads(args->threads);
            ThreadPool pool(threads);
            GenerateOptions opts;
            opts.n_predict = args->n_predict;
            opts.sampling.temperature = 0.0f;  // greedy: both runs must produce the same tokens
            opts.ignore_eos = true;
            auto with_cache = generate(model, prompt, opts, pool);
            if (!with_cache.ok()) return fail(with_cache.status());
            opts.kv_cache = false;
            auto without = generate(model, prompt, opts, pool);
            if (!without.ok()) return fail(without.status());

            auto total_tps = [](const GenerateStats& s) {
              double t = s.prompt_seconds + s.gen_seconds;
              return t > 0 ? s.n_generated / t : 0.0;
            };
            std::printf("prompt %d tokens, %d generated, greedy, %d threads\n\n", with_cache->stats.n_prompt,
                        with_cache->stats.n_generated, threads);
            std::printf("| %-16s | %12s | %14s | %14s |\n", "KV cache", "prefill t/s", "generation t/s", "end-to-end t/s");
            std::printf("|%s|%s|%s|%s|\n", std::string(18, '-').c_str(), std::string(14, '-').c_str(),
                        std::string(16, '-').c_str(), std::string(16, '-').c_str());
            for (auto* r : {&*with_cache, &*without}) {
              std::printf("| %-16s | %12.1f | %14.1f | %14.1f |\n", r == &*with_cache ? "on" : "off (recompute)",
                          r->stats.prompt_tps(), r->stats.gen_tps(), total_tps(r->stats));
            }
            const double speedup = total_tps(without->stats) > 0 ? total_tps(with_cache->stats) / total_tps(without->stats) : 0;
            std::printf("\nKV-cache speed-up (end to end): %.2fx; same tokens with and without: %s\n", speedup,
                        with_cache->tokens == without->tokens ? "yes" : "NO");
            std::printf("\ncontinuation (KV cache on):\n%s%s\n", args->prompt.c_str(), with_cache->text.c_str());
            if (with_cache->tokens != without->tokens) return 1;
            if (!args->no_types) {
              std::string eval_text;
              if (!args->model.empty() && std::filesystem::exists(args->text)) eval_text = demo_read_text(args->text);
              Status st = demo_types(model, path, prompt, opts.n_predict, eval_text, pool);
              if (st.ok()) st = demo_speculative(model, pool);
              if (st.ok()) st = demo_draft_model(model, args->draft, pool);
              if (st.ok()) st = demo_batching(model, pool);
              if (st.ok()) st = demo_chat(model, pool);
              if (!st.ok()) return fail(st);
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
