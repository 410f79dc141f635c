// Sections of `llmopt demo` for real models.
#include "cli/demo_sections.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "kernels/repack.h"
#include "model/convert.h"
#include "model/loader.h"
#include "runtime/chat.h"
#include "runtime/engine.h"
#include "runtime/generate.h"
#include "runtime/perplexity.h"
#include "runtime/spec/drafter.h"
#include "runtime/spec/spec_decode.h"

namespace llmopt::cli {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Greedy options of the speculative-decoding sections (the target's plain run is the baseline).
GenerateOptions greedy_options(int32_t n_predict) {
  GenerateOptions o;
  o.n_predict = n_predict;
  o.sampling.temperature = 0.0f;
  o.ignore_eos = true;
  return o;
}

// The table of a speculative-decoding section: its header and plain row, then one row per drafter.
void print_spec_header(const char* first_col, double plain_tps) {
  std::printf("| %-24s | %10s | %16s | %9s | %8s |\n", first_col, "acceptance", "tokens/target pass", "tokens/s",
              "speed-up");
  std::printf("|--------------------------|------------|------------------|-----------|----------|\n");
  std::printf("| %-24s | %10s | %16.2f | %9.1f | %7.2fx |\n", "plain", "-", 1.0, plain_tps, 1.0);
}
void print_spec_row(const std::string& label, const SpecStats& st, double tps, double speedup) {
  std::printf("| %-24s | %9.0f%% | %16.2f | %9.1f | %7.2fx |\n", label.c_str(), 100.0 * st.acceptance_rate(),
              st.tokens_per_pass(), tps, speedup);
}

std::string main_type(const Model& model) {
  // The type holding most weight bytes, as stored in the file (not the layout regrouped at load).
  std::vector<std::pair<size_t, std::string>> by_type;
  for (const auto& t : model.source().tensors()) {
    const std::string name = dtype_name(kernels::plain_type_of(t.view.type));
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](const auto& p) { return p.second == name; });
    if (it == by_type.end()) by_type.push_back({t.view.nbytes, name}); else it->first += t.view.nbytes;
  }
  std::sort(by_type.rbegin(), by_type.rend());
  return by_type.empty() ? "?" : by_type.front().second;
}

}  // namespace

Status demo_types(const Model& model, const std::string& model_path, const std::vector<int32_t>& prompt,
                  int32_t n_predict, const std::string& eval_text, ThreadPool& pool) {
  const std::string shipped = main_type(model);
  const bool source_quantized = shipped != "f32" && shipped != "f16" && shipped != "bf16";
  std::printf("\n## Weight types: the model as loaded, and re-written by llmopt\n\n");
  if (source_quantized) {
    std::printf("The file is already %s: the other rows are dequantized and re-quantized from it, so they\n"
                "carry its rounding error too (F32 and F16 hold the %s weights exactly).\n\n",
                shipped.c_str(), shipped.c_str());
  }
  std::printf("| %-16s | %10s | %10s | %12s | %14s |\n", "weights", "size", "perplexity", "prefill t/s",
              "generation t/s");
  std::printf("|------------------|------------|------------|--------------|----------------|\n");
  struct Variant {
    std::string label;
    DType type;
    bool as_loaded;
  };
  std::vector<Variant> variants = {{shipped + " (as loaded)", DType::kF32, true}};
  for (DType t : {DType::kF32, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
    if (dtype_name(t) == shipped) continue;
    variants.push_back({dtype_name(t), t, false});
  }
  for (const Variant& v : variants) {
    std::unique_ptr<Model> converted;
    const Model* m = &model;
    if (!v.as_loaded) {
      const std::string path =
          (std::filesystem::temp_directory_path() / (std::string("llmopt-demo-") + dtype_name(v.type) + ".gguf")).string();
      ConvertOptions co;
      co.outtype = v.type;
      co.requantize = true;
      co.pool = &pool;
      LLMOPT_RETURN_IF_ERROR(write_gguf_model(model.source(), path, co));
      LoadOptions lo;
      lo.repack = true;
      auto loaded = load_model(path, lo);
      std::filesystem::remove(path);
      if (!loaded.ok()) return loaded.status();
      converted = std::move(loaded).value();
      m = converted.get();
    }
    std::string ppl = "-";
    if (!eval_text.empty()) {
      PerplexityOptions po;
      po.n_ctx = 256;
      auto r = perplexity(*m, eval_text, po, pool);
      if (r.ok()) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", r->ppl);
        ppl = buf;
      }
    }
    GenerateOptions o;
    o.n_predict = n_predict;
    o.sampling.temperature = 0.0f;
    o.ignore_eos = true;
    auto g = generate(*m, prompt, o, pool);
    if (!g.ok()) return g.status();
    std::printf("| %-16s | %10s | %10s | %12.1f | %14.1f |\n", v.label.c_str(),
                human_bytes(static_cast<double>(m->weight_bytes())).c_str(), ppl.c_str(), g->stats.prompt_tps(),
                g->stats.gen_tps());
  }
  if (!eval_text.empty()) std::printf("\nperplexity: data/demo/eval.txt (text written for this project), 256-token chunks\n");
  (void)model_path;
  return ok_status();
}

Status demo_speculative(const Model& model, ThreadPool& pool) {
  std::printf("\n## Speculative decoding (prompt lookup: the draft is copied from the context)\n\n");
  const std::string para =
      "The old lighthouse stood at the edge of the cliff, its white paint peeling after years of salt and wind. "
      "Every night the keeper climbed the narrow stairs to light the lamp, and every morning he wrote the weather "
      "in a small blue notebook.";
  const std::string text = para + " The old lighthouse stood at the edge of the cliff. And again: The old lighthouse";
  const auto prompt = model.tokenizer().encode(text, model.tokenizer().add_bos_default());
  const GenerateOptions o = greedy_options(48);
  auto t0 = Clock::now();
  auto plain = generate(model, prompt, o, pool);
  const double t_plain = since(t0);
  if (!plain.ok()) return plain.status();
  NgramDrafter ngram(3, model.config().n_vocab);
  SpecStats st;
  SpecOptions so;
  so.k = 4;
  t0 = Clock::now();
  auto spec = generate_speculative(model, ngram, prompt, o, so, pool, &st);
  const double t_spec = since(t0);
  if (!spec.ok()) return spec.status();
  print_spec_header("decoding", plain->tokens.size() / t_plain);
  print_spec_row("n-gram draft, k = 4", st, spec->tokens.size() / t_spec, t_plain / t_spec);
  std::printf("\nsame tokens as plain greedy decoding: %s\n", spec->tokens == plain->tokens ? "yes" : "NO");
  return spec->tokens == plain->tokens ? ok_status() : error("speculative output differs from plain decoding");
}

Status demo_draft_model(const Model& model, const std::string& draft_path, ThreadPool& pool) {
  std::printf("\n## Speculative decoding with the distilled draft model\n\n");
  if (draft_path.empty() || !std::filesystem::exists(draft_path)) {
    std::printf("no draft model given (`make models` builds models/smollm2-draft/ for SmolLM2; then "
                "`llmopt demo --draft FILE`)\n");
    return ok_status();
  }
  LoadOptions lo;
  lo.repack = true;
  auto loaded = load_model(draft_path, lo);
  if (!loaded.ok()) return loaded.status().with_context(draft_path);
  std::shared_ptr<const Model> draft(std::move(*loaded));
  LLMOPT_RETURN_IF_ERROR(check_same_vocab(model, *draft));
  const Tokenizer& tok = model.tokenizer();
  ChatHistory h(default_system_prompt(model.source().metadata().get_string("tokenizer.chat_template").value_or("")));
  h.add("user", "Write a short story about a little cat who finds a red ball.");
  const auto prompt = tok.encode_with_special(h.prompt(), tok.add_bos_default());
  const GenerateOptions o = greedy_options(96);
  auto t0 = Clock::now();
  auto plain = generate(model, prompt, o, pool);
  const double t_plain = since(t0);
  if (!plain.ok()) return plain.status();
  std::printf("draft: %s (%s, %s)\n\n", draft_path.c_str(), human_bytes(static_cast<double>(draft->weight_bytes())).c_str(),
              arch_name(draft->config().arch));
  print_spec_header("decoding (greedy, chat)", plain->tokens.size() / t_plain);
  bool same = true;
  for (int32_t k : {1, 2, 4}) {
    ModelDrafter drafter(draft, model.config().n_ctx_train > 0 ? std::min(model.config().n_ctx_train, 2048) : 2048,
                         1, pool);
    SpecStats st;
    SpecOptions so;
    so.k = k;
    t0 = Clock::now();
    auto spec = generate_speculative(model, drafter, prompt, o, so, pool, &st);
    const double t_spec = since(t0);
    if (!spec.ok()) return spec.status();
    same = same && spec->tokens == plain->tokens;
    print_spec_row("draft model, k = " + std::to_string(k), st, spec->tokens.size() / t_spec, t_plain / t_spec);
  }
  std::printf("\nsame tokens as plain greedy decoding: %s\n", same ? "yes" : "NO");
  return same ? ok_status() : error("speculative output differs from plain decoding");
}

Status demo_batching(const Model& model, ThreadPool& pool) {
  std::printf("\n## Serving 8 requests at once (continuous batching, paged KV) vs one at a time\n\n");
  std::vector<std::vector<int32_t>> prompts;
  const char* starts[] = {"The weather today", "My favourite book", "In the garden", "The best way to learn",
                          "Yesterday I walked", "A good breakfast", "The river was", "When the train"};
  for (const char* s : starts) prompts.push_back(model.tokenizer().encode(s, model.tokenizer().add_bos_default()));
  double secs[2] = {0, 0};
  int64_t tokens[2] = {0, 0};
  for (int mode = 0; mode < 2; ++mode) {
    EngineConfig cfg;
    cfg.sched.max_running = mode == 0 ? 8 : 1;
    cfg.n_ctx = 256;
    auto eng = Engine::create(model, cfg, pool);
    if (!eng.ok()) return eng.status();
    const auto t0 = Clock::now();
    for (const auto& p : prompts) {
      RequestSpec rs;
      rs.prompt = p;
      rs.max_new_tokens = 32;
      rs.sampling.temperature = 0.0f;
      rs.ignore_eos = true;
      auto id = (*eng)->add_request(rs, [&tokens, mode](const TokenEvent& ev) { tokens[mode] += ev.token >= 0; });
      if (!id.ok()) return id.status();
    }
    while ((*eng)->has_unfinished()) (*eng)->step();
    secs[mode] = since(t0);
  }
  std::printf("| %-14s | %8s | %14s |\n", "mode", "tokens", "output tok/s");
  std::printf("|----------------|----------|----------------|\n");
  std::printf("| %-14s | %8lld | %14.1f |\n", "batched (8)", static_cast<long long>(tokens[0]), tokens[0] / secs[0]);
  std::printf("| %-14s | %8lld | %14.1f |\n", "one at a time", static_cast<long long>(tokens[1]), tokens[1] / secs[1]);
  std::printf("\nbatched throughput: %.2fx one at a time (llmopt serve-bench --compare measures more)\n",
              (tokens[0] / secs[0]) / (tokens[1] / secs[1]));
  return ok_status();
}

Status demo_chat(const Model& model, ThreadPool& pool) {
  const auto tmpl = model.source().metadata().get_string("tokenizer.chat_template");
  if (!tmpl) {
    std::printf("\n(no chat template in this model: chat skipped)\n");
    return ok_status();
  }
  std::printf("\n## Chat (ChatML, greedy)\n\n");
  ChatHistory h(default_system_prompt(*tmpl));
  // The example question of SmolLM2-Instruct's model card. (Asked "What is the capital of France?", this
  // 4-bit file with 8-bit activations answers in looping French, as llama.cpp does on the same file:
  // its first token is a near tie there; docs/BENCHMARKS.md.)
  const std::string question = "What is gravity?";
  h.add("user", question);
  const auto ids = model.tokenizer().encode_with_special(h.prompt(), model.tokenizer().add_bos_default());
  GenerateOptions o;
  o.n_predict = 64;
  o.sampling.temperature = 0.0f;
  o.stop = {std::string(kChatImEnd)};
  auto r = generate(model, ids, o, pool);
  if (!r.ok()) return r.status();
  std::printf("user> %s\nassistant> %s%s\n", question.c_str(), r->text.c_str(),
              r->stop_reason == "length" ? " [... the demo stops at 64 tokens]" : "");
  return ok_status();
}

}  // namespace llmopt::cli
