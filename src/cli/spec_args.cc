// Speculative-decoding flags and drafter construction.
#include "cli/spec_args.h"

#include "model/loader.h"

namespace llmopt::cli {

void add_spec_args(CLI::App* app, SpecArgs& args, bool with_k) {
  app->add_option("--draft", args.draft, "Speculative decoding with this draft model (same vocabulary)");
  app->add_option("--draft-self", args.draft_self,
                  "Speculative decoding with a quantized copy of the model as draft (e.g. q4_0, q8_0)");
  app->add_option("--draft-ngram", args.draft_ngram,
                  "Speculative decoding with prompt lookup: continue the last match of up to N tokens")
      ->check(CLI::Range(1, 16));
  if (with_k) {
    app->add_option("--spec-k", args.k, "Tokens drafted per target pass (the maximum with --spec-adaptive)")
        ->capture_default_str()
        ->check(CLI::Range(1, 64));
  }
  app->add_flag("--spec-adaptive", args.adaptive,
                "Choose k per pass from the acceptance rate and measured costs; 0 (off) when it cannot win");
}

Result<std::unique_ptr<Drafter>> make_drafter(const SpecArgs& args, const Model& target, int32_t n_ctx, uint64_t seed,
                                              ThreadPool& pool) {
  const int n_kinds = (args.draft.empty() ? 0 : 1) + (args.draft_self.empty() ? 0 : 1) + (args.draft_ngram > 0 ? 1 : 0);
  if (n_kinds == 0) return std::unique_ptr<Drafter>();
  if (n_kinds > 1) return error("choose one drafter: --draft, --draft-self or --draft-ngram");
  if (args.draft_ngram > 0) {
    return std::unique_ptr<Drafter>(std::make_unique<NgramDrafter>(args.draft_ngram, target.config().n_vocab));
  }
  std::shared_ptr<const Model> draft;
  std::string label;
  if (!args.draft.empty()) {
    LoadOptions lo;
    lo.repack = true;
    auto m = load_model(args.draft, lo);
    if (!m.ok()) return m.status().with_context(args.draft);
    draft = std::move(m).value();
    label = "draft " + args.draft;
  } else {
    auto t = dtype_from_name(args.draft_self);
    if (!t || !(*t == DType::kF16 || *t == DType::kBF16 || *t == DType::kQ8_0 || *t == DType::kQ4_0 ||
                *t == DType::kQ4_1 || *t == DType::kQ5_0 || *t == DType::kQ5_1 || *t == DType::kQ4_K ||
                *t == DType::kQ5_K || *t == DType::kQ6_K)) {
      return error("--draft-self " + args.draft_self + ": not a type to quantize to (use f16, q8_0, q4_0, q4_k, ...)");
    }
    LLMOPT_ASSIGN_OR_RETURN(draft, make_self_draft(target, *t));
    label = "self-draft " + args.draft_self;
  }
  LLMOPT_RETURN_IF_ERROR(check_same_vocab(target, *draft));
  return std::unique_ptr<Drafter>(std::make_unique<ModelDrafter>(draft, n_ctx, seed, pool, label));
}

}  // namespace llmopt::cli
