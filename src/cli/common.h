// Shared pieces of the subcommands: model options, loading with one clear error line, exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/status.h"
#include "model/model.h"

namespace llmopt::cli {

struct ModelArgs {
  std::string model;       // -m
  std::string tokenizer;   // --tokenizer (llama2.c checkpoints)
  int threads = 0;         // -t (0: physical cores)
  std::string kv_type = "f16";  // --kv-type (commands that run the model)
  bool mmap = false;            // --mmap: map a GGUF file instead of reading it into memory
  bool no_repack = false;       // --no-repack: keep Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 matrices in their file layout
};

// -m, --tokenizer, --mmap, with_threads -t and --kv-type, with_repack --no-repack.
void add_model_args(CLI::App* app, ModelArgs& args, bool with_threads = true, bool with_repack = true);
void add_kv_type_arg(CLI::App* app, ModelArgs& args);  // --kv-type f16|f32 (applied by load_or_report)
int resolve_threads(int requested);
// --outtype of `convert` and `synth`: the weight matrices' type, written by llama.cpp's reference
// quantizers (vectors stay f32).
void add_outtype_arg(CLI::App* app, std::string& outtype);
// Loads the model; on failure prints "error: <message>" and returns nullptr.
// repack: LoadOptions::repack (Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 matrices regrouped by 16 rows), for commands that only
// run the model; off where a command reads or shows the weights as stored.
std::unique_ptr<Model> load_or_report(const ModelArgs& args, bool require_tokenizer = true, bool repack = true);
// Prints "error: <message>" to stderr and returns 1.
int fail(const Status& st);
int fail(const std::string& msg);

// Each subcommand registers itself and returns the action to run after parsing.
using Action = std::function<int()>;
struct Command {
  CLI::App* sub;
  Action action;
};
Command register_generate(CLI::App& app);
Command register_perplexity(CLI::App& app);
Command register_info(CLI::App& app);
Command register_convert(CLI::App& app);
Command register_synth(CLI::App& app);
Command register_tokenize(CLI::App& app);
Command register_demo(CLI::App& app);
Command register_bench(CLI::App& app);
Command register_chat(CLI::App& app);
Command register_serve_bench(CLI::App& app);
Command register_bench_spec(CLI::App& app);
Command register_eval(CLI::App& app);
Command register_quantize(CLI::App& app);
Command register_train(CLI::App& app);
Command register_distill_data(CLI::App& app);
Command register_plot(CLI::App& app);

}  // namespace llmopt::cli
