// `llmopt synth`: random-weight models in named shapes, for speed tests.
#include <cstdio>

#include "cli/common.h"
#include "model/convert.h"
#include "model/synth.h"
#include "tokenizer/tokenizer.h"

namespace llmopt::cli {

Command register_synth(CLI::App& app) {
  struct Args {
    std::string arch;
    std::string preset;
    std::string output;
    std::string outtype = "f32";
    std::string tokenizer;
    std::string vocab, merges;
    uint64_t seed = 1;
  };
  auto args = std::make_shared<Args>();
  std::string names;
  for (const auto& p : synth_presets()) names += (names.empty() ? "" : ", ") + p.name;
  CLI::App* sub = app.add_subcommand("synth", "Write a random-weight model in a named shape (for speed tests)");
  sub->add_option("--arch", args->arch, "Architecture: gpt2 or llama (must match the preset)")
      ->check(CLI::IsMember({"gpt2", "llama"}));
  sub->add_option("--preset", args->preset, "Shape: " + names)->required();
  sub->add_option("-o,--output", args->output, "Output .gguf path")->required();
  add_outtype_arg(sub, args->outtype);
  sub->add_option("--tokenizer", args->tokenizer, "A real tokenizer: HF tokenizer.json or llama2.c tokenizer.bin");
  sub->add_option("--vocab", args->vocab, "GPT-2 vocab.json (with --merges)");
  sub->add_option("--merges", args->merges, "GPT-2 merges.txt (with --vocab)");
  sub->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  return {sub, [args]() -> int {
            auto cfg = find_synth_preset(args->preset);
            if (!cfg) return fail("unknown preset '" + args->preset + "' (see llmopt synth --help)");
            if (!args->arch.empty() && args->arch != arch_name(cfg->arch)) {
              return fail("preset '" + args->preset + "' is a " + arch_name(cfg->arch) + " model, not " + args->arch);
            }
            SynthOptions opts;
            opts.config = *cfg;
            opts.seed = args->seed;
            if (!args->vocab.empty() || !args->merges.empty()) {
              if (args->vocab.empty() || args->merges.empty()) return fail("--vocab and --merges go together");
              auto spec = tokenizer_spec_from_vocab_merges(args->vocab, args->merges);
              if (!spec.ok()) return fail(spec.status());
              opts.tokenizer = *spec;
            } else if (!args->tokenizer.empty()) {
              const std::string& t = args->tokenizer;
              auto spec = t.size() >= 5 && t.compare(t.size() - 5, 5, ".json") == 0 ? tokenizer_spec_from_hf_json(t)
                                                                                     : tokenizer_spec_from_llama2c(t);
              if (!spec.ok()) return fail(spec.status());
              opts.tokenizer = *spec;
            }
            if (opts.tokenizer) opts.config.n_vocab = static_cast<int32_t>(opts.tokenizer->tokens.size());
            std::fprintf(stderr, "synthesizing %s (%s) with random weights, seed %llu\n", args->preset.c_str(),
                         arch_name(cfg->arch), static_cast<unsigned long long>(args->seed));
            auto src = synth_model(opts);
            if (!src.ok()) return fail(src.status());
            ConvertOptions co;
            co.outtype = *dtype_from_name(args->outtype);
            Status st = write_gguf_model(**src, args->output, co);
            if (!st.ok()) return fail(st);
            std::fprintf(stderr, "wrote %s\n", args->output.c_str());
            return 0;
          }};
}

}  // namespace llmopt::cli
