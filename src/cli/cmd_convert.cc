// `llmopt convert`: any supported model file to GGUF with llama.cpp's names and keys.
#include <cstdio>

#include "cli/common.h"
#include "model/convert.h"
#include "model/loader.h"

namespace llmopt::cli {

Command register_convert(CLI::App& app) {
  struct Args {
    std::string input;
    std::string output;
    std::string tokenizer;
    std::string outtype = "f16";
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "convert", "Convert a GGUF, Hugging Face directory or llama2.c checkpoint to GGUF that llama.cpp loads");
  sub->add_option("input", args->input, "Input model (file or Hugging Face directory)")->required();
  sub->add_option("-o,--output", args->output, "Output .gguf path")->required();
  add_outtype_arg(sub, args->outtype);
  sub->add_option("--tokenizer", args->tokenizer, "Tokenizer file for llama2.c checkpoints (tokenizer.bin)");
  return {sub, [args]() -> int {
            LoadOptions lo;
            lo.tokenizer_path = args->tokenizer;
            auto src = open_model_source(args->input, lo);
            if (!src.ok()) return fail(src.status());
            // Loading the full model checks that what we write is computable and has a tokenizer.
            auto model = load_model(args->input, lo);
            if (!model.ok()) return fail(model.status());
            ConvertOptions opts;
            opts.outtype = *dtype_from_name(args->outtype);
            opts.progress = [](size_t i, size_t n, const std::string& name) {
              std::fprintf(stderr, "[%zu/%zu] %s\n", i + 1, n, name.c_str());
            };
            Status st = write_gguf_model(**src, args->output, opts);
            if (!st.ok()) return fail(st);
            std::fprintf(stderr, "wrote %s\n", args->output.c_str());
            return 0;
          }};
}

}  // namespace llmopt::cli
