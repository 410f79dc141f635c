// `llmopt tokenize`: show how a model's tokenizer splits a text.
#include <cstdio>

#include "cli/common.h"
#include "core/mmap_file.h"

namespace llmopt::cli {

Command register_tokenize(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::string prompt;
    std::string file;
    bool ids = false;
    bool no_bos = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids (and pieces) of a text");
  add_model_args(sub, args->model, /*with_threads=*/false, /*with_repack=*/false);
  auto* p = sub->add_option("-p,--prompt", args->prompt, "Text to tokenize");
  auto* f = sub->add_option("-f,--file", args->file, "Tokenize the contents of this file instead");
  p->excludes(f);
  sub->add_flag("--ids", args->ids, "Print only a JSON array of ids");
  sub->add_flag("--no-bos", args->no_bos, "Do not add BOS even if the model uses one");
  return {sub, [args, p, f]() -> int {
            if (p->count() == 0 && f->count() == 0) {
              std::fprintf(stderr, "error: give the text with --prompt or --file (see --help)\n");
              return 1;
            }
            args->model.mmap = true;  // the weights are not run: map rather than read them
            auto model = load_or_report(args->model, true, /*repack=*/false);
            if (!model) return 1;
            if (!args->file.empty()) {
              auto text = read_text_file(args->file);
              if (!text.ok()) {
                std::fprintf(stderr, "error: %s\n", text.status().message().c_str());
                return 1;
              }
              args->prompt = std::move(text).value();
            }
            const Tokenizer& tok = model->tokenizer();
            std::vector<int32_t> ids = tok.encode(args->prompt, !args->no_bos && tok.add_bos_default());
            if (args->ids) {
              std::printf("[");
              for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? ", " : "", ids[i]);
              std::printf("]\n");
              return 0;
            }
            for (int32_t id : ids) {
              std::string piece = tok.token_to_piece(id);
              std::string shown;
              for (unsigned char ch : piece) {
                if (ch == '\n') shown += "\\n";
                else if (ch == '\t') shown += "\\t";
                else if (ch < 0x20) {
                  char buf[8];
                  std::snprintf(buf, sizeof(buf), "\\x%02x", ch);
                  shown += buf;
                } else {
                  shown += static_cast<char>(ch);
                }
              }
              std::printf("%6d -> '%s'\n", id, shown.c_str());
            }
            std::printf("%zu tokens\n", ids.size());
            return 0;
          }};
}

}  // namespace llmopt::cli
