// `llmopt info`: architecture, hyperparameters, tokenizer and a tensor table.
#include <cstdio>
#include <map>

#include "cli/common.h"
#include "model/loader.h"

namespace llmopt::cli {

Command register_info(CLI::App& app) {
  struct Args {
    ModelArgs model;
    bool metadata = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("info", "Describe a model: architecture, hyperparameters, tokenizer, tensors");
  add_model_args(sub, args->model, /*with_threads=*/false, /*with_repack=*/false);
  sub->add_flag("--metadata", args->metadata, "Also print every metadata key (long arrays abbreviated)");
  return {sub, [args]() -> int {
            args->model.mmap = true;  // the weights are not run: map rather than read them
            auto model = load_or_report(args->model, /*require_tokenizer=*/false, /*repack=*/false);
            if (!model) return 1;
            const ModelConfig& c = model->config();
            const WeightSource& src = model->source();
            std::printf("file          %s\n", src.origin().c_str());
            std::printf("architecture  %s%s%s\n", arch_name(c.arch), c.name.empty() ? "" : "  name: ", c.name.c_str());
            std::printf("n_vocab %d  n_ctx_train %d  n_embd %d  n_layer %d  n_head %d  n_head_kv %d  n_ff %d\n",
                        c.n_vocab, c.n_ctx_train, c.n_embd, c.n_layer, c.n_head, c.n_head_kv, c.n_ff);
            std::printf("head_dim %d  norm_eps %g", c.head_dim, c.norm_eps);
            if (c.arch == Arch::kLlama) std::printf("  rope_theta %g  n_rot %d", c.rope_theta, c.n_rot);
            std::printf("  head %s\n", c.tied_head ? "tied to token_embd" : "untied (output.weight)");
            if (model->has_tokenizer()) {
              const TokenizerSpec& t = model->tokenizer().spec();
              std::printf("tokenizer     %s (%s), %zu tokens, %zu merges, bos %d, eos %d, add_bos %s\n",
                          t.model == "gpt2" ? "byte-level BPE" : "SentencePiece BPE", t.model.c_str(),
                          t.tokens.size(), t.merges.size(), t.bos_id, t.eos_id, t.add_bos ? "yes" : "no");
            } else {
              std::printf("tokenizer     none\n");
            }
            if (args->metadata) {
              std::printf("\nmetadata (%zu keys)\n", src.metadata().size());
              for (const auto& [key, v] : src.metadata().entries()) {
                std::string val;
                if (v.type == MetaType::kString) {
                  val = v.s.size() > 80 ? v.s.substr(0, 80) + "..." : v.s;
                } else if (v.type == MetaType::kArray) {
                  val = std::string("array of ") + std::to_string(v.arr.size()) + " " + meta_type_name(v.elem_type);
                } else if (v.is_float()) {
                  val = std::to_string(*v.as_float());
                } else if (auto i = v.as_int()) {
                  val = std::to_string(*i);
                }
                std::printf("  %-44s %-7s %s\n", key.c_str(), meta_type_name(v.type), val.c_str());
              }
            }
            std::printf("\n%-34s %-6s %-20s %12s\n", "tensor", "type", "shape", "bytes");
            size_t total = 0;
            int64_t params = 0;
            std::map<std::string, size_t> by_type;
            for (const auto& t : src.tensors()) {
              std::printf("%-34s %-6s %-20s %12zu\n", t.name.c_str(), dtype_name(t.view.type),
                          shape_to_string(t.view.shape).c_str(), t.view.nbytes);
              total += t.view.nbytes;
              params += t.view.numel();
              by_type[dtype_name(t.view.type)] += t.view.nbytes;
            }
            std::printf("\n%zu tensors, %lld parameters, %s (%.2f bits per weight)\n", src.tensors().size(),
                        static_cast<long long>(params), human_bytes(static_cast<double>(total)).c_str(),
                        params > 0 ? 8.0 * static_cast<double>(total) / static_cast<double>(params) : 0.0);
            for (const auto& [type, bytes] : by_type) {
              std::printf("  %-6s %s\n", type.c_str(), human_bytes(static_cast<double>(bytes)).c_str());
            }
            return 0;
          }};
}

}  // namespace llmopt::cli
