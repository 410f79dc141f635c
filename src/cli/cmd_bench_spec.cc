// `llmopt bench-spec`: speculative decoding against plain decoding of the same target, same prompts,
// same run: for each k (and adaptive k), the acceptance rate, tokens per target pass, tokens/s and
// the speed-up over plain decoding. The speed-up compares decode speed: the time after the prompt's
// prefill (which speculation does not change), like llama.cpp's "decoded N tokens in T s"; the
// end-to-end tokens/s (prompt included) is printed too. Configurations are interleaved prompt by prompt so that drift in
// machine speed hits all of them alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/spec_args.h"
#include "runtime/chat.h"
#include "runtime/generate.h"
#include "runtime/spec/adaptive_k.h"
#include "runtime/spec/spec_decode.h"

namespace llmopt::cli {
namespace {

struct Row {
  std::string label;
  int32_t k = 0;
  bool adaptive = false;
  SpecStats stats;
  int64_t tokens = 0;
  double seconds = 0.0;
  // Decode: tokens after the first, over the time after the prefill of the prompt. With speculation
  // the first verify pass (last prompt token + drafts) counts as decode time while its first token is
  // not counted: the comparison leans against speculation, never for it.
  int64_t decode_tokens = 0;
  double decode_seconds = 0.0;
  double tps() const { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0; }
  double decode_tps() const { return decode_seconds > 0 ? static_cast<double>(decode_tokens) / decode_seconds : 0.0; }
};

}  // namespace

Command register_bench_spec(CLI::App& app) {
  struct Args {
    ModelArgs model;
    SpecArgs spec;
    std::vector<int32_t> ks = {1, 2, 4, 6, 8};
    std::string prompts_file;
    int32_t n_predict = 64;
    int32_t max_prompts = 0;
    SamplingParams sampling;
    bool json = false;
    bool chat = false;
  };
  auto args = std::make_shared<Args>();
  args->sampling.temperature = 0.0f;
  CLI::App* sub = app.add_subcommand(
      "bench-spec", "Measure speculative decoding against plain decoding: acceptance, tokens/pass, speed-up");
  add_model_args(sub, args->model);
  add_spec_args(sub, args->spec, /*with_k=*/false);
  sub->add_option("-k,--spec-k", args->ks, "Draft lengths to measure (comma list)")->delimiter(',')->capture_default_str();
  sub->add_option("-f,--file", args->prompts_file, "Prompts, one per line")->required();
  sub->add_option("--max-prompts", args->max_prompts, "Use only the first N prompts (0: all)");
  sub->add_option("-n,--n-predict", args->n_predict, "Tokens generated per prompt")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--temp", args->sampling.temperature, "Temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", args->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", args->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  sub->add_option("-s,--seed", args->sampling.seed, "Random seed")->capture_default_str();
  sub->add_flag("--json", args->json, "JSON instead of a markdown table");
  sub->add_flag("--chat", args->chat,
                "Each line is a user message: wrap it in the model's ChatML template (with its default system prompt)");
  return {sub, [args]() -> int {
            if (!args->spec.any()) return fail("bench-spec needs a drafter: --draft, --draft-self or --draft-ngram");
            for (int32_t k : args->ks) {
              if (k < 1 || k > 64) return fail("-k values must be in 1..64");
            }
            std::ifstream in(args->prompts_file);
            if (!in) return fail(args->prompts_file + ": cannot open the prompts file");
            std::vector<std::string> prompts;
            for (std::string line; std::getline(in, line);) {
              if (!line.empty()) prompts.push_back(line);
            }
            if (args->max_prompts > 0 && static_cast<int32_t>(prompts.size()) > args->max_prompts) {
              prompts.resize(static_cast<size_t>(args->max_prompts));
            }
            if (prompts.empty()) return fail(args->prompts_file + ": no prompts (one per line)");
            auto model = load_or_report(args->model);
            if (!model) return 1;
            ThreadPool pool(resolve_threads(args->model.threads));
            const int32_t n_ctx = model->config().n_ctx_train;
            auto drafter = make_drafter(args->spec, *model, n_ctx, args->sampling.seed + 1, pool);
            if (!drafter.ok()) return fail(drafter.status());

            GenerateOptions opts;
            opts.n_predict = args->n_predict;
            opts.sampling = args->sampling;
            opts.sampling.repeat_penalty = 1.0f;
            opts.ignore_eos = true;
            std::vector<Row> rows;
            rows.push_back({"plain", 0, false, {}, 0, 0.0});
            for (int32_t k : args->ks) rows.push_back({"k=" + std::to_string(k), k, false, {}, 0, 0.0});
            const int32_t k_max = *std::max_element(args->ks.begin(), args->ks.end());
            rows.push_back({"adaptive (k<=" + std::to_string(k_max) + ")", k_max, true, {}, 0, 0.0});
            std::fprintf(stderr, "bench-spec: %s, drafter %s, %zu prompts x %d tokens, %d threads\n",
                         args->model.model.c_str(), (*drafter)->name().c_str(), prompts.size(), args->n_predict,
                         pool.n_threads());
            // The adaptive row keeps its estimates across prompts, as a server would per drafter.
            AdaptiveK adaptive_state(k_max, true);
            using Clock = std::chrono::steady_clock;
            for (size_t pi = 0; pi < prompts.size(); ++pi) {
              std::vector<int32_t> ids;
              if (args->chat) {
                ChatHistory h(default_system_prompt(
                    model->source().metadata().get_string("tokenizer.chat_template").value_or("")));
                h.add("user", prompts[pi]);
                ids = model->tokenizer().encode_with_special(h.prompt(), model->tokenizer().add_bos_default());
              } else {
                ids = model->tokenizer().encode(prompts[pi], model->tokenizer().add_bos_default());
              }
              for (Row& row : rows) {
                const auto t0 = Clock::now();
                Result<GenerateResult> r = error("unset");
                SpecStats st;
                if (row.k == 0) {
                  r = generate(*model, ids, opts, pool);
                } else {
                  SpecOptions so{row.k, row.adaptive, row.adaptive ? &adaptive_state : nullptr};
                  r = generate_speculative(*model, **drafter, ids, opts, so, pool, &st);
                }
                if (!r.ok()) return fail("prompt " + std::to_string(pi + 1) + ": " + r.status().message());
                const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
                row.seconds += elapsed;
                row.tokens += static_cast<int64_t>(r->tokens.size());
                row.decode_seconds += elapsed - (row.k == 0 ? r->stats.prompt_seconds : st.prefill_seconds);
                row.decode_tokens += std::max<int64_t>(0, static_cast<int64_t>(r->tokens.size()) - 1);
                if (row.k == 0) {
                  st.generated = static_cast<int64_t>(r->tokens.size());
                  st.target_passes = st.generated;
                }
                row.stats.add(st);
              }
              std::fprintf(stderr, "  prompt %zu/%zu done\n", pi + 1, prompts.size());
            }
            const double base = rows[0].decode_tps();
            if (args->json) {
              nlohmann::json j = nlohmann::json::array();
              for (const Row& r : rows) {
                j.push_back({{"config", r.label},
                             {"k", r.k},
                             {"adaptive", r.adaptive},
                             {"acceptance", r.stats.acceptance_rate()},
                             {"accepted_by_position", r.stats.accepted_at},
                             {"drafted_by_position", r.stats.drafted_at},
                             {"tokens_per_target_pass", r.stats.tokens_per_pass()},
                             {"tokens_per_s", r.tps()},
                             {"decode_tokens_per_s", r.decode_tps()},
                             {"speedup", base > 0 ? r.decode_tps() / base : 0.0},
                             {"tokens", r.tokens},
                             {"seconds", r.seconds},
                             {"decode_seconds", r.decode_seconds}});
              }
              std::printf("%s\n", j.dump(2).c_str());
              return 0;
            }
            std::printf("| config | acceptance | tokens / target pass | tokens/s (with prompt) | decode tokens/s | speed-up |\n");
            std::printf("|---|---:|---:|---:|---:|---:|\n");
            for (const Row& r : rows) {
              std::printf("| %s | %s | %.2f | %.1f | %.1f | %.2fx |\n", r.label.c_str(),
                          r.k == 0 ? "-" : (std::to_string(static_cast<int>(100.0 * r.stats.acceptance_rate() + 0.5)) + "%").c_str(),
                          r.stats.tokens_per_pass(), r.tps(), r.decode_tps(), base > 0 ? r.decode_tps() / base : 0.0);
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
