// llmopt: one binary, one subcommand per job. Each subcommand lives in its own file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <vector>

#include "cli/common.h"

int main(int argc, char** argv) {
  using namespace llmopt::cli;
  CLI::App app{
      "llmopt: load, run, measure and convert language models (GGUF, Hugging Face safetensors, llama2.c)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "llmopt 0.1.0");
  std::vector<Command> commands;
  for (auto reg : {register_generate, register_perplexity, register_info, register_convert, register_synth,
                   register_tokenize, register_demo,
                   register_bench,
                   register_chat, register_serve_bench, register_bench_spec, register_eval, register_quantize,
                   register_train, register_plot, register_distill_data}) {
    commands.push_back(reg(app));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help / --version (exit code 0) print as CLI11 formats them; a bad command line is one error
    // line and exit code 1, like every other error of the tool.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "error: %s (see --help)\n", e.what());
    return 1;
  }
  for (auto& cmd : commands) {
    if (!cmd.sub->parsed()) continue;
    try {
      return cmd.action();
    } catch (const std::bad_alloc&) {
      return fail("out of memory");
    } catch (const std::exception& e) {
      return fail(e.what());
    }
  }
  return 0;
}
