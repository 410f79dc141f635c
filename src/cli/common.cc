// Model loading and error reporting shared by the subcommands.
#include "cli/common.h"

#include <cstdio>

#include "core/thread_pool.h"
#include "model/kv_store.h"
#include "model/loader.h"

namespace llmopt::cli {

void add_model_args(CLI::App* app, ModelArgs& args, bool with_threads, bool with_repack) {
  app->add_option("-m,--model", args.model,
                  "Model: a .gguf file, a Hugging Face directory (config.json + safetensors) or a llama2.c .bin")
      ->required();
  app->add_option("--tokenizer", args.tokenizer, "Tokenizer file for llama2.c checkpoints (tokenizer.bin)");
  app->add_flag("--mmap", args.mmap,
                "Map a GGUF model file instead of reading it into memory (shared between processes and paged "
                "in on demand; the default read into huge pages decodes faster)");
  if (with_repack) {
    app->add_flag("--no-repack", args.no_repack,
                "Keep the model's Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 weight matrices in their file layout (by default, "
                "where the CPU's kernels have a product for it (AVX-512: all eight; AVX2: all but Q5_K), they are regrouped "
                "by 16 rows in memory at load for faster products: same memory; the quantized types give the same results bit for bit, F32 / F16 one fma chain per output "
                "instead of 16 lane sums, within rounding of them)");
  }
  if (with_threads) {
    app->add_option("-t,--threads", args.threads, "Threads (default: number of physical cores)")
        ->check(CLI::Range(0, 1024));
    add_kv_type_arg(app, args);
  }
}

void add_kv_type_arg(CLI::App* app, ModelArgs& args) {
  app->add_option("--kv-type", args.kv_type, "KV cache element type: f16 (half the memory; llama.cpp's default) or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
}

void add_outtype_arg(CLI::App* app, std::string& outtype) {
  app->add_option("--outtype", outtype,
                  "Type of the weight matrices: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k "
                  "or q6_k (llama.cpp's reference quantizers; vectors stay f32)")
      ->capture_default_str()
      ->check(CLI::IsMember(
          {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"},
          CLI::ignore_case));
}

int resolve_threads(int requested) { return requested > 0 ? requested : physical_core_count(); }

std::unique_ptr<Model> load_or_report(const ModelArgs& args, bool require_tokenizer, bool repack) {
  KvStore::set_default_type(args.kv_type == "f32" ? DType::kF32 : DType::kF16);
  LoadOptions opts;
  opts.tokenizer_path = args.tokenizer;
  opts.require_tokenizer = require_tokenizer;
  opts.gguf_load = args.mmap ? FileLoad::kMap : FileLoad::kRead;
  opts.repack = repack && !args.no_repack;
  auto model = load_model(args.model, opts);
  if (!model.ok()) {
    fail(model.status());
    return nullptr;
  }
  return std::move(model).value();
}

int fail(const Status& st) { return fail(st.message()); }

int fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 1;
}


}  // namespace llmopt::cli
