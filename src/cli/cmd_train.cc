// `llmopt train`: FP32 training of a small LLaMA- or GPT-2-architecture model from scratch on a text
// file encoded with another model's tokenizer; writes a GGUF that carries that tokenizer.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>

#include "cli/common.h"
#include "core/thread_pool.h"
#include "model/loader.h"
#include "train/data.h"
#include "train/distill_data.h"
#include "train/export.h"
#include "train/trainer.h"

namespace llmopt::cli {
namespace {

std::string format_duration(double s) {
  if (!(s >= 0.0) || s > 1e8) return "?";
  const long long t = static_cast<long long>(s + 0.5);
  char buf[64];
  if (t >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", t / 3600, (t / 60) % 60);
  } else if (t >= 60) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%llds", t);
  }
  return buf;
}

std::string stem_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string b = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = b.rfind('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

}  // namespace

Command register_train(CLI::App& app) {
  struct Args {
    std::string arch;
    int dim = 0, layers = 0, heads = 0, kv_heads = 0, ffn = 0, ctx = 0;
    std::string tokenizer_from, tokenizer_file, text, output;
    int64_t steps = 0, batch = 8, warmup = -1;
    float lr = 1e-3f, min_lr_ratio = 0.1f, weight_decay = 0.1f, rope_theta = 10000.0f, norm_eps = 1e-5f;
    double clip = 1.0, heldout = 0.05;
    uint64_t seed = 1;
    int64_t eval_every = 0, eval_windows = 32, save_every = 0, log_every = 10;
    std::string checkpoint, resume;
    int threads = 0;
    std::string distill_from, distill_data, log_csv;
    double distill_alpha = 1.0, distill_temp = 1.0;
    int distill_top_k = 16, distill_window = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub =
      app.add_subcommand("train",
                         "Train a small LLaMA or GPT-2 model from scratch in FP32 (AdamW, warm-up + cosine "
                         "schedule) on a text file "
                         "encoded with an existing model's tokenizer; writes a GGUF carrying that tokenizer");
  sub->add_option("--arch", a->arch, "Architecture: llama or gpt2")
      ->required()
      ->check(CLI::IsMember({"llama", "gpt2"}));
  sub->add_option("--dim", a->dim, "Embedding width")->required()->check(CLI::Range(1, 1 << 16));
  sub->add_option("--layers", a->layers, "Number of transformer blocks")
      ->required()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--heads", a->heads, "Attention heads")->required()->check(CLI::Range(1, 1024));
  sub->add_option("--kv-heads", a->kv_heads, "K/V heads (LLaMA GQA; default: --heads)")
      ->check(CLI::Range(1, 1024));
  sub->add_option("--ffn", a->ffn,
                  "Feed-forward width (default: 4*dim for gpt2, 8*dim/3 rounded up to 32 for llama)")
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--ctx", a->ctx, "Training sequence length T (also the model's context length)")
      ->required()
      ->check(CLI::Range(2, 1 << 16));
  sub->add_option("--tokenizer-from", a->tokenizer_from,
                  "Model (GGUF, HF directory, llama2.c .bin) whose tokenizer to use (default: --distill-from)");
  sub->add_option("--tokenizer", a->tokenizer_file, "Tokenizer file for a llama2.c --tokenizer-from model");
  sub->add_option("-f,--file", a->text, "Training text file (or --distill-data)");
  sub->add_option("--distill-from", a->distill_from,
                  "Distill from this target model: learn its next-token distribution (KL on temperature-scaled "
                  "logits against its top-k probabilities). With -f the target scores the text (teacher "
                  "forcing); with --distill-data the distributions come from `llmopt distill-data`");
  sub->add_option("--distill-data", a->distill_data,
                  ".dist file from `llmopt distill-data` (tokens + the target's top-k); with --distill-alpha 0 "
                  "it trains on the same tokens without the target's distributions (a plain baseline)");
  sub->add_option("--distill-alpha", a->distill_alpha,
                  "Weight of the target's distribution; 1 - alpha goes to the actual next token")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--distill-temp", a->distill_temp, "Distillation temperature T (loss scaled by T^2)")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 100.0));
  sub->add_option("--distill-top-k", a->distill_top_k, "Target probabilities kept per position (teacher forcing)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1024));
  sub->add_option("--distill-window", a->distill_window,
                  "Teacher-forcing window in tokens (default: the target's context, at most 512)")
      ->check(CLI::Range(2, 1 << 20));
  sub->add_option("--log-csv", a->log_csv,
                  "Write step,loss,heldout_loss,heldout_top1,lr,tok_s rows (for `llmopt plot`)");
  sub->add_option("-o,--output", a->output, "Output .gguf path")->required();
  sub->add_option("--steps", a->steps, "Optimizer steps")
      ->required()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--batch", a->batch, "Sequences per step")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  sub->add_option("--lr", a->lr, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  sub->add_option("--warmup", a->warmup, "Linear warm-up steps (default: min(100, steps/10))")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  sub->add_option("--min-lr-ratio", a->min_lr_ratio, "Cosine decay ends at this fraction of --lr")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--weight-decay", a->weight_decay,
                  "AdamW decoupled weight decay (projection matrices only)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 10.0));
  sub->add_option("--clip", a->clip, "Global gradient-norm clip (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  sub->add_option("--seed", a->seed, "Seed of initialization and data order")->capture_default_str();
  sub->add_option("--heldout", a->heldout, "Fraction of the tokens (the tail) held out for evaluation")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.9));
  sub->add_option("--eval-every", a->eval_every, "Held-out loss every N steps (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--eval-windows", a->eval_windows, "At most this many held-out windows per evaluation")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  sub->add_option("--save-every", a->save_every, "Write --checkpoint every N steps (0: only at the end)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--checkpoint", a->checkpoint, "Checkpoint file (parameters, AdamW state, step, RNG)");
  sub->add_option("--resume", a->resume, "Continue bit-exactly from this checkpoint");
  sub->add_option("--log-every", a->log_every, "Progress line every N steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 30));
  sub->add_option("--rope-theta", a->rope_theta, "RoPE base (llama)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("--norm-eps", a->norm_eps, "Norm epsilon")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_option("-t,--threads", a->threads, "Threads (default: number of physical cores)")
      ->check(CLI::Range(0, 1024));

  return {sub, [a]() -> int {
            using namespace llmopt::train;
            if (a->save_every > 0 && a->checkpoint.empty())
              return fail("--save-every needs --checkpoint FILE");
            const bool llama = a->arch == "llama";
            if (!llama && a->kv_heads != 0 && a->kv_heads != a->heads)
              return fail("gpt2 has --kv-heads == --heads");

            const bool distill = !a->distill_from.empty() || !a->distill_data.empty();
            if (a->text.empty() == a->distill_data.empty())
              return fail("give the training data as -f TEXT or --distill-data FILE (exactly one)");
            if (!a->text.empty() && a->distill_from.empty() && a->distill_data.empty() && a->tokenizer_from.empty())
              return fail("--tokenizer-from MODEL is required (or --distill-from TARGET)");
            const std::string tok_source = a->tokenizer_from.empty() ? a->distill_from : a->tokenizer_from;
            if (tok_source.empty()) return fail("--distill-data needs --tokenizer-from or --distill-from");
            LoadOptions lo;
            lo.tokenizer_path = a->tokenizer_file;
            auto src = open_model_source(tok_source, lo);
            if (!src.ok()) return fail(src.status());
            const Metadata& tok_md = (*src)->metadata();
            auto spec = tokenizer_spec_from_metadata(tok_md);
            if (!spec.ok()) return fail(spec.status().with_context(tok_source));
            auto tok = Tokenizer::create(*spec);
            if (!tok.ok()) return fail(tok.status().with_context(tok_source));
            ThreadPool pool(resolve_threads(a->threads));
            TokenSplit split;
            std::pair<DistillSet, DistillSet> dsplit;
            if (distill) {
              DistillSet set;
              if (!a->distill_data.empty()) {
                auto loaded = load_distill_set(a->distill_data);
                if (!loaded.ok()) return fail(loaded.status());
                set = std::move(*loaded);
                if (!a->distill_from.empty()) {
                  ModelArgs ma;
                  ma.model = a->distill_from;
                  auto target = load_or_report(ma, false, /*repack=*/false);
                  if (!target) return 1;
                  if (target->config().n_vocab != set.n_vocab)
                    return fail(a->distill_data + ": made with a vocabulary of " + std::to_string(set.n_vocab) +
                                ", but " + a->distill_from + " has " + std::to_string(target->config().n_vocab));
                }
              } else {
                auto tokens = encode_text_file(a->text, **tok);
                if (!tokens.ok()) return fail(tokens.status());
                ModelArgs ma;
                ma.model = a->distill_from;
                auto target = load_or_report(ma, false, /*repack=*/false);
                if (!target) return 1;
                if (target->config().n_vocab != (*tok)->n_vocab())
                  return fail(a->distill_from + " has a vocabulary of " + std::to_string(target->config().n_vocab) +
                              ", the tokenizer " + std::to_string((*tok)->n_vocab()));
                int32_t window = a->distill_window;
                if (window == 0) {
                  window = target->config().n_ctx_train > 0 ? std::min(512, target->config().n_ctx_train) : 512;
                }
                std::fprintf(stderr, "teacher: scoring %zu tokens with %s (windows of %d, top-%d)\n",
                             tokens->size(), a->distill_from.c_str(), window, a->distill_top_k);
                auto scored = score_with_teacher(*target, *tokens, window, a->distill_top_k, pool,
                                                 [](size_t done, size_t total) {
                                                   if (done % 16 == 0 || done == total)
                                                     std::fprintf(stderr, "  window %zu/%zu\n", done, total);
                                                 });
                if (!scored.ok()) return fail(scored.status());
                set = std::move(*scored);
              }
              if (set.n_vocab != (*tok)->n_vocab())
                return fail("distillation data has a vocabulary of " + std::to_string(set.n_vocab) +
                            ", the tokenizer " + std::to_string((*tok)->n_vocab()));
              dsplit = split_distill_set(set, a->heldout);
              split.train = dsplit.first.tokens;
              split.heldout = dsplit.second.tokens;
            } else {
              auto tokens = encode_text_file(a->text, **tok);
              if (!tokens.ok()) return fail(tokens.status());
              split = split_tokens(*tokens, a->heldout);
            }
            TrainOptions o;
            ModelConfig& c = o.config;
            c.arch = llama ? Arch::kLlama : Arch::kGpt2;
            c.name = stem_of(a->output);
            c.n_vocab = (*tok)->n_vocab();
            c.n_ctx_train = a->ctx;
            c.n_embd = a->dim;
            c.n_layer = a->layers;
            c.n_head = a->heads;
            c.n_head_kv = a->kv_heads > 0 ? a->kv_heads : a->heads;
            c.n_ff = a->ffn > 0 ? a->ffn : (llama ? (8 * a->dim / 3 + 31) / 32 * 32 : 4 * a->dim);
            c.norm_eps = a->norm_eps;
            c.rope_theta = a->rope_theta;
            c.tied_head = true;
            o.batch = a->batch;
            o.steps = a->steps;
            o.lr = a->lr;
            o.warmup = a->warmup >= 0 ? a->warmup : std::min<int64_t>(100, a->steps / 10);
            o.min_lr_ratio = a->min_lr_ratio;
            o.adamw.weight_decay = a->weight_decay;
            o.clip = a->clip;
            o.seed = a->seed;
            o.eval_max_windows = a->eval_windows;
            o.distill_alpha = a->distill_alpha;
            o.distill_temp = a->distill_temp;
            const size_t n_train = split.train.size(), n_held = split.heldout.size();
            auto trainer_or = distill ? Trainer::create_distill(o, std::move(dsplit.first), std::move(dsplit.second), pool)
                                      : Trainer::create(o, std::move(split.train), std::move(split.heldout), pool);
            if (!trainer_or.ok()) return fail(trainer_or.status());
            Trainer& tr = **trainer_or;
            const ModelConfig& cfg = tr.layout().cfg;
            if (a->eval_every > 0 && count_eval_windows(n_held, cfg.n_ctx_train, 1) == 0) {
              return fail("--eval-every: the held-out part has " + std::to_string(n_held) +
                          " tokens, fewer than ctx + 1 (raise --heldout or use a longer text)");
            }
            if (!a->resume.empty()) {
              Status st = tr.resume(a->resume);
              if (!st.ok()) return fail(st);
              if (tr.step_index() > o.steps) {
                return fail(a->resume + ": checkpoint is at step " + std::to_string(tr.step_index()) +
                            ", past --steps " + std::to_string(o.steps));
              }
              std::fprintf(stderr, "resumed from %s at step %lld\n", a->resume.c_str(),
                           static_cast<long long>(tr.step_index()));
            }
            std::fprintf(
                stderr,
                "train: %s, dim %d, %d layers, %d heads (%d kv), ffn %d, ctx %d, vocab %d: %zu parameters\n"
                "data: %zu training tokens, %zu held out; batch %lld x %d tokens; %d threads\n",
                arch_name(cfg.arch), cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.n_head_kv, cfg.n_ff,
                cfg.n_ctx_train, cfg.n_vocab, tr.layout().total, n_train, n_held,
                static_cast<long long>(o.batch), cfg.n_ctx_train, pool.n_threads());

            using Clock = std::chrono::steady_clock;
            const auto t0 = Clock::now();
            auto window_start = t0;
            int64_t window_steps = 0;
            const int64_t first = tr.step_index();
            double window_loss = 0.0;
            double last_tps = 0.0;
            std::ofstream csv;
            if (!a->log_csv.empty()) {
              csv.open(a->log_csv, tr.step_index() > 0 ? std::ios::app : std::ios::trunc);
              if (!csv) return fail(a->log_csv + ": cannot create");
              if (tr.step_index() == 0) csv << "step,loss,heldout_loss,heldout_top1,lr,tok_s\n";
            }
            while (tr.step_index() < o.steps) {
              const StepResult r = tr.step();
              if (!std::isfinite(r.loss))
                return fail("loss is not finite at step " + std::to_string(tr.step_index()));
              const int64_t s = tr.step_index();
              window_loss += r.loss;
              ++window_steps;
              if (s % a->log_every == 0 || s == o.steps) {
                const auto now = Clock::now();
                const double win_s = std::chrono::duration<double>(now - window_start).count();
                const double all_s = std::chrono::duration<double>(now - t0).count();
                const double tps =
                    static_cast<double>(window_steps * tr.tokens_per_step()) / std::max(win_s, 1e-9);
                const double eta = all_s / static_cast<double>(s - first) * static_cast<double>(o.steps - s);
                std::fprintf(stderr, "step %lld/%lld  loss %.4f  lr %.3e  gnorm %.3f  %.0f tok/s  ETA %s\n",
                             static_cast<long long>(s), static_cast<long long>(o.steps),
                             window_loss / static_cast<double>(window_steps), r.lr, r.grad_norm, tps,
                             format_duration(eta).c_str());
                last_tps = tps;
                window_start = now;
                window_steps = 0;
                window_loss = 0.0;
              }
              std::optional<HeldoutEval> ev;
              if (a->eval_every > 0 && (s % a->eval_every == 0 || s == o.steps)) {
                ev = tr.heldout_eval();
                if (ev && ev->n_teacher > 0) {
                  std::fprintf(stderr, "eval step %lld  held-out loss %.4f  top-1 agreement with the target %.2f%%\n",
                               static_cast<long long>(s), ev->loss, 100.0 * ev->top1_agreement());
                } else if (ev) {
                  std::fprintf(stderr, "eval step %lld  held-out loss %.4f\n", static_cast<long long>(s), ev->loss);
                }
              }
              if (csv.is_open()) {
                csv << s << ',' << r.loss << ',';
                if (ev) csv << ev->loss;
                csv << ',';
                if (ev && ev->n_teacher > 0) csv << ev->top1_agreement();
                csv << ',' << r.lr << ',' << last_tps << '\n';
                csv.flush();
              }
              if (!a->checkpoint.empty() && ((a->save_every > 0 && s % a->save_every == 0) || s == o.steps)) {
                Status st = tr.save(a->checkpoint);
                if (!st.ok()) return fail(st);
              }
            }
            Status st = write_trained_gguf(tr.layout(), tr.params(), &tok_md, cfg.name, a->output);
            if (!st.ok()) return fail(st);
            std::fprintf(stderr, "wrote %s (%zu parameters, f32)\n", a->output.c_str(), tr.layout().total);
            if (tr.distilling()) {
              const auto ev = tr.heldout_eval();
              const HeldoutEval uni = tr.unigram_baseline();
              if (ev && ev->n_teacher > 0) {
                std::printf("held-out: loss %.4f, top-1 agreement with the target %.2f%% over %lld positions "
                            "(unigram baseline %.2f%%)\n",
                            ev->loss, 100.0 * ev->top1_agreement(), static_cast<long long>(ev->n_teacher),
                            100.0 * uni.top1_agreement());
              }
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
