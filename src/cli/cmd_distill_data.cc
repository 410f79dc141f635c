// `llmopt distill-data`: the target model writes its own training data for a draft. Each prompt
// (raw text, or "chat: QUESTION" wrapped in the model's ChatML template) is continued by the target
// through the batching engine; every generated token is stored with the target's top-k
// distribution at that step (temperature 1, before sampling), which `llmopt train --distill-from`
// learns from. A draft must predict exactly this distribution, so the target's own text is the most
// useful data it can get.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "cli/common.h"
#include "runtime/chat.h"
#include "runtime/engine.h"
#include "train/distill_data.h"

namespace llmopt::cli {
namespace {

struct Args {
  ModelArgs model;
  std::string prompts, output, text_output;
  int32_t n_predict = 256;
  int32_t samples = 1;
  int32_t top_k_store = 16;
  int32_t max_seqs = 16;
  int32_t n_ctx = 1024;
  SamplingParams sampling;
};

struct Prompt {
  std::string text;
  bool chat = false;
};

Result<std::vector<Prompt>> read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(path + ": cannot open the prompt file");
  std::vector<Prompt> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    Prompt p;
    if (line.rfind("chat:", 0) == 0) {
      p.chat = true;
      p.text = line.substr(line.size() > 5 && line[5] == ' ' ? 6 : 5);
    } else {
      p.text = line;
    }
    for (size_t i = 0; (i = p.text.find("\\n", i)) != std::string::npos;) p.text.replace(i, 2, 1, '\n');
    if (!p.text.empty()) out.push_back(std::move(p));
  }
  if (out.empty()) return error(path + ": no prompts (one per line; '#' starts a comment)");
  return out;
}

// One request's sequence: its prompt tokens (hard rows), then generated tokens with soft rows.
struct Pending {
  train::DistillSet set;
  bool done = false;
};

int run(const Args& a) {
  auto model = load_or_report(a.model, true, /*repack=*/false);
  if (!model) return 1;
  auto prompts = read_prompts(a.prompts);
  if (!prompts.ok()) return fail(prompts.status());
  const Tokenizer& tok = model->tokenizer();
  const int32_t n_vocab = model->config().n_vocab;
  if (a.top_k_store < 2 || a.top_k_store > n_vocab) return fail("--store-top-k must be in [2, vocabulary size]");
  if (Status st = validate_sampling(a.sampling); !st.ok()) return fail(st);
  const std::string system =
      default_system_prompt(model->source().metadata().get_string("tokenizer.chat_template").value_or(""));
  const int32_t im_end = [&] {
    const auto ids = tok.encode_with_special(kChatImEnd, false);
    return ids.size() == 1 ? ids[0] : -1;
  }();

  ThreadPool pool(resolve_threads(a.model.threads));
  EngineConfig cfg;
  cfg.sched.max_running = a.max_seqs;
  cfg.sched.max_batch_tokens = std::max(512, a.max_seqs);
  cfg.sched.max_waiting = 1 << 20;
  // KV room for prompt + output only (the model's trained context may be thousands of tokens).
  cfg.n_ctx = std::min(a.n_ctx, model->config().n_ctx_train > 0 ? model->config().n_ctx_train : a.n_ctx);
  auto engine = Engine::create(*model, cfg, pool);
  if (!engine.ok()) return fail(engine.status());
  Engine& eng = **engine;

  std::map<int64_t, std::unique_ptr<Pending>> pending;  // by request id: output in submission order
  const size_t n_req = prompts->size() * static_cast<size_t>(a.samples);
  for (size_t r = 0; r < n_req; ++r) {
    const Prompt& p = (*prompts)[r % prompts->size()];
    std::vector<int32_t> ids;
    if (p.chat) {
      ChatHistory h(system);
      h.add("user", p.text);
      ids = tok.encode_with_special(h.prompt(), tok.add_bos_default());
    } else {
      ids = tok.encode(p.text, tok.add_bos_default());
    }
    if (ids.empty()) continue;
    if (static_cast<int32_t>(ids.size()) + a.n_predict > cfg.n_ctx) {
      return fail("prompt " + std::to_string(r % prompts->size() + 1) + " (" + std::to_string(ids.size()) +
                  " tokens) plus -n " + std::to_string(a.n_predict) + " exceeds the context " +
                  std::to_string(cfg.n_ctx) + " (raise -c)");
    }
    auto pend = std::make_unique<Pending>();
    pend->set.k = a.top_k_store;
    pend->set.n_vocab = n_vocab;
    pend->set.append_hard(ids);
    Pending* pp = pend.get();
    RequestSpec spec;
    spec.prompt = ids;
    spec.max_new_tokens = a.n_predict;
    spec.sampling = a.sampling;
    spec.sampling.seed = a.sampling.seed + r;
    if (im_end >= 0) spec.stop_tokens = {im_end};
    spec.on_logits = [pp](const float* logits, int32_t) { pp->set.set_last_row(logits); };
    auto id = eng.add_request(std::move(spec), [pp](const TokenEvent& e) {
      if (e.token >= 0) pp->set.push_token(e.token);
      if (e.finished) pp->done = true;
    });
    if (!id.ok()) return fail(id.status());
    pending.emplace(*id, std::move(pend));
  }

  std::fprintf(stderr, "distill-data: %zu prompts x %d samples, up to %d tokens each, top-%d stored\n",
               prompts->size(), a.samples, a.n_predict, a.top_k_store);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t generated = 0, last_report = 0;
  const int64_t budget = static_cast<int64_t>(n_req) * a.n_predict;
  while (eng.has_unfinished()) {
    generated += eng.step().n_sampled;
    if (generated - last_report >= 2000 || !eng.has_unfinished()) {
      last_report = generated;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double tps = generated / std::max(s, 1e-9);
      std::fprintf(stderr, "  %lld tokens generated (at most %lld), %.0f tok/s, %.0f s\n",
                   static_cast<long long>(generated), static_cast<long long>(budget), tps, s);
    }
  }

  train::DistillSet all;
  all.k = a.top_k_store;
  all.n_vocab = n_vocab;
  std::ofstream text;
  if (!a.text_output.empty()) {
    text.open(a.text_output, std::ios::binary);
    if (!text) return fail(a.text_output + ": cannot create");
  }
  for (auto& [id, p] : pending) {
    all.append_set(p->set);
    if (text.is_open()) text << tok.decode(p->set.tokens) << "\n";
  }
  if (Status st = train::save_distill_set(a.output, all); !st.ok()) return fail(st);
  std::fprintf(stderr, "wrote %s: %zu tokens, %zu with the target's top-%d distribution\n", a.output.c_str(),
               all.size(), all.n_soft(), all.k);
  return 0;
}

}  // namespace

Command register_distill_data(CLI::App& app) {
  auto a = std::make_shared<Args>();
  a->sampling.temperature = 1.0f;
  a->sampling.top_k = 0;
  a->sampling.top_p = 1.0f;
  a->sampling.min_p = 0.0f;
  a->sampling.seed = 1;
  CLI::App* sub = app.add_subcommand(
      "distill-data",
      "Generate distillation data: the target continues each prompt and every generated token is stored "
      "with the target's top-k next-token distribution (for `llmopt train --distill-from`)");
  add_model_args(sub, a->model, /*with_threads=*/true, /*with_repack=*/false);
  sub->add_option("--prompts", a->prompts,
                  "Prompt file: one per line; 'chat: TEXT' uses the model's chat template; '\\n' is a newline; "
                  "'#' starts a comment")
      ->required();
  sub->add_option("-o,--output", a->output, "Output .dist file")->required();
  sub->add_option("--text", a->text_output, "Also write the sequences as text (one per line group)");
  sub->add_option("-n,--n-predict", a->n_predict, "Tokens generated per sequence at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--samples", a->samples, "Sequences per prompt (different seeds)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--store-top-k", a->top_k_store, "Probabilities stored per position")->capture_default_str();
  sub->add_option("--max-seqs", a->max_seqs, "Sequences generated at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  sub->add_option("-c,--ctx", a->n_ctx, "Context per sequence (prompt + output)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--temp", a->sampling.temperature, "Sampling temperature of the generated text")
      ->capture_default_str();
  sub->add_option("--top-p", a->sampling.top_p, "Top-p of the generated text (1: off)")->capture_default_str();
  sub->add_option("-s,--seed", a->sampling.seed, "Seed of the first sequence (the others: seed + index)")
      ->capture_default_str();
  return {sub, [a]() { return run(*a); }};
}

}  // namespace llmopt::cli
