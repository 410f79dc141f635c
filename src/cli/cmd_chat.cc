// `llmopt chat`: an interactive ChatML conversation on stdin/stdout. Each line is a user message;
// the reply streams to stdout. /reset clears the history, /quit or end of input exits. Works piped:
//   echo "What is 2+2?" | llmopt chat -m model.gguf -n 40 --temp 0
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/common.h"
#include "runtime/chat.h"
#include "runtime/generate.h"

namespace llmopt::cli {

Command register_chat(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::string system;
    bool system_set = false;
    int n_predict = 256;
    int n_ctx = 2048;
    SamplingParams sampling;
    bool verbose = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("chat", "Chat with an instruction-tuned model (ChatML) on stdin");
  add_model_args(sub, args->model);
  sub->add_option("--system", args->system,
                  "System message (default: the one in the model's chat template, if any)");
  sub->add_option("-n,--n-predict", args->n_predict, "Most tokens per reply (-1: until end of turn)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1 << 30));
  sub->add_option("-c,--ctx-size", args->n_ctx, "Context size in tokens (0: the model's)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
  sub->add_option("--temp", args->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", args->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", args->sampling.top_p, "Top-p nucleus (1: off)")->capture_default_str();
  sub->add_option("--min-p", args->sampling.min_p, "Min-p relative to the top token (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", args->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("-s,--seed", args->sampling.seed, "Random seed")->capture_default_str();
  sub->add_flag("-v,--verbose", args->verbose, "Print speeds after each reply on stderr");
  return {sub, [args, sub]() -> int {
            auto model = load_or_report(args->model);
            if (!model) return 1;
            const Tokenizer& tok = model->tokenizer();
            std::string system = args->system;
            if (sub->get_option("--system")->count() == 0) {
              system = default_system_prompt(
                  model->source().metadata().get_string("tokenizer.chat_template").value_or(""));
            }
            ChatHistory history(system);
            GenerateOptions opts;
            opts.n_predict = args->n_predict;
            opts.sampling = args->sampling;
            opts.stop = {std::string(kChatImEnd)};
            const int32_t n_ctx_model = model->config().n_ctx_train;
            opts.n_ctx = args->n_ctx > 0 && (n_ctx_model <= 0 || args->n_ctx < n_ctx_model) ? args->n_ctx : 0;
            const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : n_ctx_model;
            // Room left for the reply: the prompt may use the rest.
            const int32_t reply_room = args->n_predict > 0 ? args->n_predict : n_ctx / 2;
            if (reply_room >= n_ctx) return fail("-n must be smaller than the context (" + std::to_string(n_ctx) + ")");
            const size_t max_prompt = static_cast<size_t>(n_ctx - reply_room);
            ThreadPool pool(resolve_threads(args->model.threads));
            const bool interactive = isatty(STDIN_FILENO) != 0;
            auto count_tokens = [&](const std::string& text) {
              return tok.encode_with_special(text, tok.add_bos_default()).size();
            };

            std::string line;
            while (true) {
              if (interactive) {
                std::fputs("> ", stdout);
                std::fflush(stdout);
              }
              if (!std::getline(std::cin, line)) break;
              if (!line.empty() && line.back() == '\r') line.pop_back();
              if (line == "/quit" || line == "/exit") break;
              if (line == "/reset") {
                history.clear();
                std::fputs("(history cleared)\n", stderr);
                continue;
              }
              if (line.empty()) continue;
              history.add("user", line);
              const size_t dropped = history.trim_to_fit(count_tokens, max_prompt);
              if (dropped > 0) {
                std::fprintf(stderr, "(dropped the %zu oldest message%s to fit the %d-token context)\n", dropped,
                             dropped == 1 ? "" : "s", n_ctx);
              }
              // NOTE: the whole conversation is re-encoded and prefilled every turn; reusing the KV cache
              // of the previous turns (the prompt only grows at the end) is a later optimization.
              std::vector<int32_t> prompt = tok.encode_with_special(history.prompt(), tok.add_bos_default());
              if (prompt.size() > max_prompt) {
                history.clear();
                std::fprintf(stderr, "(message too long: %zu tokens, the context allows %zu; history cleared)\n",
                             prompt.size(), max_prompt);
                continue;
              }
              auto res = generate(*model, prompt, opts, pool, [&](const std::string& piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
                return true;
              });
              if (!res.ok()) return fail(res.status().with_context(args->model.model));
              std::fputc('\n', stdout);
              std::fflush(stdout);
              // NOTE: generate() stops at EOS, which is <|im_end|> for SmolLM2; a model whose EOS differs
              // (Qwen's <|endoftext|>) would need generate() to take extra stop token ids.
              history.add("assistant", res->text);
              if (args->verbose) {
                const GenerateStats& st = res->stats;
                std::fprintf(stderr, "prompt: %d tokens, %.1f tokens/s | reply: %d tokens, %.1f tokens/s | stop: %s\n",
                             st.n_prompt, st.prompt_tps(), st.n_generated, st.gen_tps(), res->stop_reason.c_str());
              }
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
