// `llmopt quantize`: an F32/F16/BF16 model to a quantized GGUF, either
//   --type: one type for every weight matrix or one of llama.cpp's mixed K-quant file types (q4_k_m,
//           q5_k_m; rules in model/quant_mix.cc), with llama.cpp's reference quantizers; or
//   --method rtn|gptq|awq: the quant library's methods on the grids of Q4_0 / Q4_1 / Q8_0 blocks
//           (quant/gguf_grid.h), calibrated on a text, layer by layer (cli/quantize_method.cc); or
//   --method smoothquant, or --act dynamic|static with rtn|gptq: W8A8 as the extension type i8_ch.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>

#include "cli/common.h"
#include "cli/quantize_method.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/quant_mix.h"
#include "quant/gguf_grid.h"
#include "quant/hessian.h"
#include "runtime/eval.h"


namespace llmopt::cli {
namespace {

const char* kTypes = "f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m";

bool is_plain(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }



}  // namespace

Command register_quantize(CLI::App& app) {
  struct Args {
    std::string input;
    std::string output;
    std::string type;
    std::string keep;
    std::string tokenizer;
    bool pure = false;
    int threads = 0;
    MethodArgs m;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand(
      "quantize",
      "Quantize an F32/F16/BF16 model (GGUF, Hugging Face directory or llama2.c checkpoint) to GGUF, with "
      "llama.cpp's reference quantizers (--type), with RTN, GPTQ or AWQ on the Q4_0/Q4_1/Q8_0 grids (--method), or "
      "to W8A8 (int8 weights and int8 activations: --method smoothquant, or --act with rtn|gptq)");
  sub->add_option("input", args->input, "Input model (file or Hugging Face directory)")->required();
  sub->add_option("output", args->output, "Output .gguf path")->required();
  sub->add_option("--type", args->type,
                  std::string("Output type: ") + kTypes +
                      ". Tensor types are chosen like llama-quantize with that file type: q4_k_m and q5_k_m per "
                      "tensor; a single type for every weight matrix except the head (or the tied embeddings), "
                      "which get q6_k (q8_0 when their rows do not fit; a q8_0 file keeps q8_0); norms, biases and "
                      "position embeddings stay as they are. q4_k and q5_k (no llama-quantize file type of their "
                      "own) are always --pure");
  sub->add_flag("--pure", args->pure,
                "--type: every weight matrix in the one type, the head too (llama-quantize --pure); rows that do "
                "not fit its blocks still fall back");
  sub->add_option("--method", args->m.method,
                  "rtn, gptq, awq or smoothquant: quantize every linear layer of the blocks with this method, layer "
                  "by layer with calibration inputs from the already quantized layers before it; embeddings and the "
                  "head stay as in the input. rtn/gptq/awq write the grid of a GGUF block type (4-bit sym: q4_0, "
                  "4-bit asym: q4_1, 8-bit sym: q8_0; llama.cpp loads these); smoothquant (and --act) writes W8A8 "
                  "weights as the llmopt extension type i8_ch (int8, one f32 scale per row; docs/FORMATS.md)");
  sub->add_option("--bits", args->m.bits, "--method: 4 or 8 (default 4; 8 for W8A8)");
  sub->add_option("--granularity", args->m.granularity,
                  "--method: group (one scale per --group-size inputs), channel (one per output row) or tensor "
                  "(W8A8 only); groups longer than 32 repeat their parameters in every 32-block (default group; "
                  "channel for W8A8)");
  sub->add_option("--act", args->m.act,
                  "W8A8: quantize activations to int8 at run time with a per-token scale (dynamic), a per-tensor "
                  "scale calibrated on --calib (static; the default of --method smoothquant), or per input the "
                  "static scale where its output error is at most 2x the dynamic one's, else dynamic (auto)");
  sub->add_option("--sq-alpha", args->m.sq_alpha,
                  "--method smoothquant: migration strength alpha in [0, 1], s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) "
                  "(default: searched per input on 0, 0.05, ..., 1 and no smoothing, with the static activation "
                  "range clipping, to minimize the layer's W8A8 output error on the calibration inputs)");
  sub->add_flag("--smooth-only", args->m.smooth_only,
                "--method smoothquant: write the smoothed model in f32 without rounding anything (it computes the same "
                "function as the input; for inspecting the migration)");
  sub->add_flag("--rotate", args->m.rotate,
                "W8A8 (needs --calib): also try each input rotated by an orthogonal R = Hadamard (x) Q after smoothing, "
                "and keep the rotation where it lowers the layer's output error on the calibration inputs. The "
                "weight is stored as W R with Q as <name>.rot, and each activation row is multiplied by R at run time "
                "(n * (m + log2 p) multiply-adds for rows of n = p * m, p a power of two, m <= 256). Spreading "
                "outlier channels over the whole row is what lets one static scale cover ffn_down's input (QuaRot)");
  sub->add_option("--sq-weights", args->m.sq_weights,
                  "--method smoothquant: round the smoothed int8 weights to nearest (rtn, the default) or with GPTQ "
                  "(gptq: error compensation with the Hessian of the smoothed inputs; --act-order applies)");
  sub->add_option("--embed-type", args->m.embed_type,
                  "--method: write token_embd and output as this type with llama.cpp's quantizers (e.g. q8_0, q6_k, "
                  "f16; rows that do not fit its blocks fall back with a warning). Default: as in the input for "
                  "--bits 4 and weight-only 8-bit, i8_ch per row for W8A8");
  sub->add_flag("--compact", args->m.compact,
                "--bits 4 --asym with --group-size 128 or --granularity channel: write the llmopt extension type "
                "q4_1_g128 (one fp16 scale and min per 128 weights, 4.25 bits per weight) instead of Q4_1 blocks "
                "with repeated parameters (5.0 bits per weight, loadable by llama.cpp)");
  sub->add_flag("--act-order", args->m.act_order,
                "--method gptq: quantize columns in order of descending Hessian diagonal (static groups)");
  sub->add_flag("--scale-search", args->m.scale_search,
                "--method gptq (weight-only grids): instead of each group's full range, search the clipping ratio "
                "(1, 0.98, ..., 0.5) that minimizes its rounding error weighted as GPTQ weighs columns (lower KL "
                "divergence; see docs/BENCHMARKS.md)");
  sub->add_flag("--gptq-per-layer", args->m.gptq_per_layer,
                "--method gptq (weight-only grids): capture each layer's inputs once and use the layer's own outputs "
                "on them as the target (the GPTQ paper's setup). The default captures each linear group's inputs "
                "after the groups before it are quantized, and makes the target the unquantized model's outputs on "
                "its own inputs (asymmetric calibration: error from earlier layers is compensated too; lower KL "
                "divergence, docs/BENCHMARKS.md) at about twice the calibration passes");
  sub->add_option("--awq-objective", args->m.awq_objective,
                  "--method awq: what the scale search minimizes. block (default): the output of the module the layer "
                  "feeds (Q/K/V: the attention output; gate/up: the MLP output), by running up to 32 calibration "
                  "windows through the block for each alpha, as the AWQ paper does (about 3x the time of the layer "
                  "search); layer: the layer's own output on the captured inputs (faster)");
  sub->add_option("--tune-steps", args->m.tune_steps,
                  "--method rtn|gptq|awq (weight-only grids): after quantizing, train each group's scale (and offset "
                  "with --asym) for N steps so that the model's next-token distributions match the unquantized "
                  "model's on the calibration windows (KL divergence; the codes stay fixed unless --tune-codes; kept "
                  "only if the KL divergence on the calibration windows drops). Tuning needs many windows: use "
                  "--calib-samples in the hundreds. Default 0: off");
  sub->add_option("--tune-lr", args->m.tune_lr,
                  "--tune-steps: peak learning rate of the relative scale change (default 3e-3; warm-up over the "
                  "first tenth of the steps, then cosine decay)");
  sub->add_flag("--tune-codes", args->m.tune_codes,
                "--tune-steps: also learn each weight's rounding (a code may move up or down, trained straight "
                "through the rounding)");
  sub->add_option("--tune-batch", args->m.tune_batch, "--tune-steps: calibration windows per step (default 4)");
  sub->add_option("--tune-holdout", args->m.tune_holdout,
                  "--tune-steps: hold the last N calibration windows out of training and stop early: their KL "
                  "divergence is measured every tenth of the steps, and the parameters where it was lowest are kept "
                  "(only if below the untuned model's). Guards against fitting the windows (e.g. --tune-codes on few "
                  "windows); default 0: no held-out windows, kept if the KL on all windows drops");
  sub->add_option("--group-size", args->m.group_size, "--method: 32, 64 or 128 (default 32)");
  sub->add_flag("--sym", args->m.sym, "--method: symmetric grid (the default; q4_0 / q8_0)");
  sub->add_flag("--asym", args->m.asym, "--method: asymmetric grid (4-bit only: q4_1)");
  sub->add_option("--calib", args->m.calib,
                  "--method gptq|awq|smoothquant and --act static: calibration text file");
  sub->add_option("--calib-samples", args->m.calib_samples,
                  "--method: calibration windows (default 32; more give GPTQ a better Hessian: the quality report "
                  "uses 128)");
  sub->add_option("--calib-seq-len", args->m.calib_seq_len, "--method: tokens per calibration window (default 128)");
  sub->add_option("--keep", args->keep,
                  "Regular expression (ECMAScript, searched in the tensor name): matching weight matrices are "
                  "written as f16 instead");
  sub->add_option("--tokenizer", args->tokenizer, "Tokenizer file for llama2.c checkpoints (tokenizer.bin)");
  sub->add_option("-t,--threads", args->threads, "Threads (default: number of physical cores)")
      ->check(CLI::Range(0, 1024));
  return {sub, [args]() -> int {
            if (!args->m.method.empty()) {
              if (!args->type.empty()) return fail("use either --type or --method, not both");
              if (args->pure) return fail("--pure applies to --type (llama-quantize's file types), not to --method");
              return run_quantize_method(args->input, args->output, args->keep, args->tokenizer, args->threads, args->m);
            }
            if (args->type.empty()) return fail("quantize needs --type or --method");
            // The type and the regex are checked before anything is read.
            std::optional<QuantMix> mix = quant_mix_from_name(args->type);
            DType outtype = DType::kF16;
            if (mix) {
              outtype = quant_mix_base_type(*mix);
            } else {
              std::string t = args->type;
              for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
              const bool known = t == "f16" || t == "bf16" || t == "q8_0" || t == "q4_0" || t == "q4_1" ||
                                 t == "q5_0" || t == "q5_1" || t == "q4_k" || t == "q5_k" || t == "q6_k";
              if (!known) return fail("unknown type '" + args->type + "' (use one of: " + kTypes + ")");
              outtype = *dtype_from_name(t);
            }
            std::optional<std::regex> keep;
            if (!args->keep.empty()) {
              try {
                keep.emplace(args->keep, std::regex::ECMAScript);
              } catch (const std::regex_error& e) {
                return fail("--keep '" + args->keep + "' is not a valid regular expression: " + e.what());
              }
            }
            {
              std::error_code ec;
              if (std::filesystem::equivalent(args->input, args->output, ec)) {
                return fail("the output " + args->output + " is the input; write to another file");
              }
            }
            LoadOptions lo;
            lo.tokenizer_path = args->tokenizer;
            auto src = open_model_source(args->input, lo);
            if (!src.ok()) return fail(src.status());
            std::map<std::string, std::pair<DType, int64_t>> src_types;  // type, row length
            for (const NamedTensor& t : (*src)->tensors()) {
              if (t.view.shape.size() >= 2 && !is_plain(t.view.type)) {
                return fail(args->input + " is already quantized (" + dtype_name(t.view.type) +
                            "); quantize from an F32/F16/BF16 model");
              }
              src_types[t.name] = {t.view.type, t.view.cols()};
            }
            // Loading the full model checks that what we write is computable and has a tokenizer.
            auto model = load_model(args->input, lo);
            if (!model.ok()) return fail(model.status());

            ConvertOptions opts;
            opts.outtype = outtype;
            const QuantMixModelInfo info = quant_mix_model_info(**src);
            // q4_k and q5_k have no llama-quantize file type of their own: always pure.
            const bool pure = args->pure || (!mix && (outtype == DType::kQ4_K || outtype == DType::kQ5_K));
            opts.type_for = [&](const std::string& name, DType dflt) -> DType {
              if (keep && std::regex_search(name, *keep)) return DType::kF16;
              auto it = src_types.find(name);
              if (it == src_types.end()) return dflt;
              const int64_t cols = it->second.second;
              std::optional<DType> t = mix && !pure ? quant_mix_tensor_type(*mix, name, cols, info)
                                                    : single_type_tensor_type(outtype, pure, name, cols, info);
              return t ? *t : it->second.first;  // llama.cpp leaves it in its own type
            };
            if (mix) opts.file_type = quant_mix_file_type(*mix);
            ThreadPool pool(resolve_threads(args->threads));
            opts.pool = &pool;
            opts.on_tensor = [](size_t i, size_t n, const std::string& name, DType type) {
              std::fprintf(stderr, "[%zu/%zu] %s %s\n", i + 1, n, name.c_str(), dtype_name(type));
              std::fflush(stderr);
            };
            Status st = write_gguf_model(**src, args->output, opts);
            if (!st.ok()) return fail(st);
            auto out_model = load_model(args->output);
            if (!out_model.ok()) return fail(out_model.status().with_context("reading back " + args->output));
            const uint64_t in_bytes = path_bytes(args->input), out_bytes = path_bytes(args->output);
            std::fprintf(stderr, "wrote %s (%s)\n", args->output.c_str(),
                         mix ? quant_mix_name(*mix) : dtype_name(outtype));
            std::fprintf(stderr, "size: %s -> %s (%.2fx smaller)\n", human_bytes(static_cast<double>(in_bytes)).c_str(),
                         human_bytes(static_cast<double>(out_bytes)).c_str(),
                         out_bytes > 0 ? static_cast<double>(in_bytes) / static_cast<double>(out_bytes) : 0.0);
            std::fprintf(stderr, "bits per weight: %.2f -> %.2f\n", bits_per_weight(**model), bits_per_weight(**out_model));
            return 0;
          }};
}

}  // namespace llmopt::cli
