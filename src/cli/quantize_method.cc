// `llmopt quantize --method`: see quantize_method.h. This file is the pipeline (flags, the F32 working
// copy, the layers in order, the output file); the per-layer quantizers and shared state are in
// quantize_run.h.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>

#include "cli/common.h"
#include "cli/quantize_method.h"
#include "cli/quantize_run.h"
#include "cli/quantize_w8a8.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "model/convert.h"
#include "model/loader.h"
#include "model/quant_mix.h"
#include "quant/gguf_grid.h"
#include "runtime/eval.h"

namespace llmopt::cli {
namespace {

bool is_float_type(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

double bits_per_weight(const Model& m) {
  const uint64_t n = weight_elements(m);
  return n > 0 ? static_cast<double>(m.weight_bytes()) * 8.0 / static_cast<double>(n) : 0.0;
}

int run_quantize_method(const std::string& input, const std::string& output, const std::string& keep_re,
                        const std::string& tokenizer_path, int threads, const MethodArgs& args) {
  using namespace quant;
  // Flags first, before anything is read.
  MethodArgs a = args;
  if (a.method != "rtn" && a.method != "gptq" && a.method != "awq" && a.method != "smoothquant") {
    return fail("unknown method '" + a.method + "' (use rtn, gptq, awq or smoothquant)");
  }
  if (a.sym && a.asym) return fail("--sym and --asym exclude each other");
  // W8A8: int8 weights as i8_ch and int8 activations at run time.
  const bool w8a8 = a.method == "smoothquant" || !a.act.empty();
  if (a.method == "smoothquant" && a.act.empty()) a.act = "static";
  if (w8a8) {
    if (a.act != "dynamic" && a.act != "static" && a.act != "auto") {
      return fail("unknown --act '" + a.act +
                  "' (use dynamic: per-token scales at run time, static: calibrated, or auto: static where it costs "
                  "at most 2x the output error of dynamic)");
    }
    if (a.method == "awq") return fail("--act (W8A8) works with --method rtn, gptq or smoothquant, not awq");
    if (a.bits == 0) a.bits = 8;
    if (a.bits != 8) {
      return fail("W8A8 (--act, --method smoothquant) quantizes weights and activations to 8 bits; --bits " +
                  std::to_string(a.bits) + " is not supported there (use --bits 8)");
    }
    if (a.asym) return fail("W8A8 weights are symmetric (int8 x int8 products); drop --asym");
    if (a.granularity.empty()) a.granularity = "channel";
    if (a.granularity != "channel" && a.granularity != "tensor") {
      return fail("W8A8 uses one weight scale per output row (--granularity channel) or per tensor (tensor), not '" +
                  a.granularity + "'");
    }
    if (!(a.sq_alpha <= 1.0f) || (a.sq_alpha < 0.0f && a.sq_alpha != -1.0f)) {
      return fail("--sq-alpha " + std::to_string(a.sq_alpha) + " is outside [0, 1]");
    }
  }
  if (a.sq_weights != "rtn" && a.sq_weights != "gptq") {
    return fail("unknown --sq-weights '" + a.sq_weights + "' (use rtn or gptq)");
  }
  if (a.sq_weights == "gptq" && a.method != "smoothquant") {
    return fail("--sq-weights applies to --method smoothquant only (use --method gptq --act ... otherwise)");
  }
  if (a.act_order && a.method != "gptq" && a.sq_weights != "gptq") {
    return fail("--act-order applies to GPTQ only (--method gptq, or --method smoothquant --sq-weights gptq)");
  }
  if (a.scale_search && (a.method != "gptq" || w8a8)) {
    return fail("--scale-search applies to weight-only --method gptq only");
  }
  std::optional<DType> embed_type;
  if (!a.embed_type.empty()) {
    embed_type = dtype_from_name(a.embed_type);
    if (!embed_type || (!kernels::can_quantize(*embed_type) && *embed_type != DType::kF32) ||
        *embed_type == DType::kQ4_1G128) {
      return fail("--embed-type '" + a.embed_type + "' is not a type llmopt writes (use f32, f16, bf16, q8_0, q6_k, ...)");
    }
  }
  if (a.smooth_only && a.method != "smoothquant") return fail("--smooth-only applies to --method smoothquant only");
  if (a.rotate && !w8a8) return fail("--rotate applies to W8A8 (--method smoothquant, or --act with rtn|gptq)");
  if (a.rotate && a.smooth_only) return fail("--rotate and --smooth-only exclude each other (a rotation is stored with int8 weights only)");
  if (a.bits == 0) a.bits = 4;
  if (a.granularity.empty()) a.granularity = "group";
  if (a.compact && (w8a8 || a.bits != 4 || !a.asym || (a.granularity == "group" && a.group_size != 128))) {
    return fail("--compact writes 4-bit asymmetric groups of 128 (or per channel) as q4_1_g128: use it with "
                "--bits 4 --asym and --group-size 128 or --granularity channel");
  }
  Result<GridType> grid = grid_for(w8a8 ? 8 : a.bits, !a.asym);
  if (!grid.ok()) return fail(grid.status());
  GridSpec gspec;
  gspec.type = *grid;
  W8A8Spec w8spec;
  w8spec.per_tensor = a.granularity == "tensor";
  w8spec.gptq = a.method == "gptq" || a.sq_weights == "gptq";
  w8spec.act_order = a.act_order;
  if (w8a8) {
    gspec.group_size = 0;
  } else if (a.granularity == "channel") {
    gspec.group_size = 0;
  } else if (a.granularity == "group") {
    if (a.group_size != 32 && a.group_size != 64 && a.group_size != 128) {
      return fail("--group-size " + std::to_string(a.group_size) + " is not supported (use 32, 64 or 128)");
    }
    gspec.group_size = a.group_size;
  } else {
    return fail("unknown granularity '" + a.granularity +
                "' (use channel or group; per-tensor scales are for W8A8: --act dynamic|static)");
  }
  const bool calibrated = a.method != "rtn" || a.act == "static" || a.act == "auto" || a.rotate;
  if (calibrated && a.calib.empty()) {
    return fail((a.rotate ? std::string("--rotate (chosen per input by the output error)")
                 : a.method == "rtn" ? std::string("--act static") : "--method " + a.method) +
                " needs calibration text: --calib FILE");
  }
  if (a.calib_samples < 1) return fail("--calib-samples must be >= 1");
  if (a.calib_seq_len < 2) return fail("--calib-seq-len must be >= 2");
  std::optional<std::regex> keep;
  if (!keep_re.empty()) {
    try {
      keep.emplace(keep_re, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return fail("--keep '" + keep_re + "' is not a valid regular expression: " + e.what());
    }
  }
  {
    std::error_code ec;
    if (std::filesystem::equivalent(input, output, ec)) {
      return fail("the output " + output + " is the input; write to another file");
    }
  }
  std::string calib_text;
  if (calibrated) {
    std::ifstream f(a.calib, std::ios::binary);
    if (!f) return fail("cannot read calibration text " + a.calib);
    std::ostringstream ss;
    ss << f.rdbuf();
    calib_text = ss.str();
  }

  LoadOptions lo;
  lo.tokenizer_path = tokenizer_path;
  auto src_or = open_model_source(input, lo);
  if (!src_or.ok()) return fail(src_or.status());
  std::shared_ptr<const WeightSource> src = *src_or;
  for (const NamedTensor& t : src->tensors()) {
    if (t.view.shape.size() >= 2 && !is_float_type(t.view.type)) {
      return fail(input + " is already quantized (" + dtype_name(t.view.type) +
                  "); quantize from an F32/F16/BF16 model");
    }
  }
  auto in_model = load_model(input, lo);  // checks that the input is computable and has a tokenizer
  if (!in_model.ok()) return fail(in_model.status());

  // The F32 working copy and a model running on it.
  auto work = std::make_shared<MemoryWeightSource>(src->origin());
  work->mutable_metadata() = src->metadata();
  std::map<std::string, float*> f32;
  for (const NamedTensor& t : src->tensors()) {
    if (!is_float_type(t.view.type)) {
      work->add_tensor(t.name, t.view);
      continue;
    }
    const int64_t n = t.view.numel();
    auto* p = reinterpret_cast<float*>(
        work->add_owned_tensor(t.name, DType::kF32, t.view.shape, static_cast<size_t>(n) * sizeof(float)));
    kernels::dequantize_row(t.view.type, t.view.data, p, n);
    f32[t.name] = p;
  }
  work->keep_alive(src);
  auto model_or = load_model_from_source(work, lo);
  if (!model_or.ok()) return fail(model_or.status());
  const Model& model = **model_or;
  const ModelConfig& cfg = model.config();

  // Rows that are not whole GGUF blocks fall back to F16 (below); rows of whole blocks that the group
  // size does not divide are an error, before any work.
  for (int32_t il = 0; il < cfg.n_layer; ++il) {
    for (const LinearGroup& g : layer_groups(cfg.arch, il)) {
      for (const std::string& name : g.weights) {
        const TensorView* v = work->find(name);
        if (v != nullptr && a.compact && v->cols() % 128 != 0) {
          return fail("--compact needs rows that are whole groups of 128; " + name + " has rows of " +
                      std::to_string(v->cols()) + " elements");
        }
        if (v == nullptr || v->cols() % 32 != 0 || gspec.group_size == 0 || w8a8) continue;
        if (v->cols() % gspec.group_size != 0) {
          return fail("--group-size " + std::to_string(gspec.group_size) + " does not divide the rows of " +
                      std::to_string(v->cols()) + " elements of " + name + " (use a group size that divides " +
                      std::to_string(v->cols()) + ", or --granularity channel)");
        }
      }
    }
  }

  std::vector<std::vector<int32_t>> windows;
  if (calibrated) {
    if (cfg.arch == Arch::kGpt2 && a.calib_seq_len > cfg.n_ctx_train) {
      return fail("--calib-seq-len " + std::to_string(a.calib_seq_len) + " exceeds the model's context of " +
                  std::to_string(cfg.n_ctx_train));
    }
    const std::vector<int32_t> ids = model.tokenizer().encode(calib_text, false);
    const int64_t n_tok = static_cast<int64_t>(ids.size());
    if (n_tok < a.calib_seq_len) {
      return fail("calibration text has " + std::to_string(n_tok) + " tokens, need at least " +
                  std::to_string(a.calib_seq_len));
    }
    const int64_t n_win = std::min<int64_t>(a.calib_samples, n_tok / a.calib_seq_len);
    const bool bos = model.tokenizer().add_bos_default() && model.tokenizer().bos() >= 0;
    for (int64_t i = 0; i < n_win; ++i) {
      windows.emplace_back(ids.begin() + i * a.calib_seq_len, ids.begin() + (i + 1) * a.calib_seq_len);
      if (bos) windows.back()[0] = model.tokenizer().bos();  // like llama.cpp's perplexity chunks
    }
    std::fprintf(stderr, "calibration: %lld windows of %d tokens from %s (%lld tokens)\n",
                 static_cast<long long>(n_win), a.calib_seq_len, a.calib.c_str(), static_cast<long long>(n_tok));
  }

  ThreadPool pool(resolve_threads(threads));
  MethodRun run(a);
  run.work = work;
  run.f32 = f32;
  run.model = &model;
  run.pool = &pool;
  run.calibrated = calibrated;
  run.gspec = gspec;
  run.w8spec = w8spec;
  run.qtype = a.compact ? DType::kQ4_1G128 : grid_dtype(gspec.type);
  run.gran = gspec.group_size == 0 ? "channel" : "g" + std::to_string(gspec.group_size);
  const DType qtype = run.qtype;
  const std::string& gran = run.gran;
  auto view_of = [&](const std::string& name) { return run.view_of(name); };

  for (int32_t il = 0; il < cfg.n_layer; ++il) {
    std::vector<LinearGroup> groups = layer_groups(cfg.arch, il);
    // Which weights get quantized; the others are written as F16.
    for (LinearGroup& g : groups) {
      std::vector<std::string> kept;
      for (const std::string& name : g.weights) {
        const TensorView* v = view_of(name);
        if (v == nullptr || !f32.count(name)) continue;
        if (keep && std::regex_search(name, *keep)) {
          run.to_f16_in_place(name);
          std::fprintf(stderr, "[layer %d/%d] %s f16 (--keep)\n", il + 1, cfg.n_layer, name.c_str());
          continue;
        }
        Status fit = w8a8 ? ok_status() : validate_grid(gspec, v->rows(), v->cols());
        if (!fit.ok()) {
          log_warn("quantize: tensor '" + name + "': " + fit.message() + "; writing it as f16");
          run.to_f16_in_place(name);
          continue;
        }
        kept.push_back(name);
      }
      g.weights = kept;
    }
    if (calibrated) {
      run.capture.clear();
      for (const LinearGroup& g : groups) {
        if (!g.weights.empty()) run.capture.want(view_of(g.weights[0])->data);
      }
      run_calibration(model, windows, &run.capture, pool);
    }
    if (w8a8) {
      Status st = quantize_layer_w8a8(run, groups, il);
      if (!st.ok()) return fail(st);
      continue;
    }
    Status st = quantize_layer_grid(run, groups, il);
    if (!st.ok()) return fail(st);
  }

  // W8A8 also covers the token embeddings and the head (round-to-nearest per row; the head's activations
  // per token): like a Q8_0 file, every matrix is 8-bit, and the head is an int8 x int8 matmul too.
  if (w8a8 && !a.smooth_only && !embed_type) {
    for (const char* name : {"token_embd.weight", "output.weight"}) {
      const TensorView* v = view_of(name);
      if (v == nullptr || !run.f32.count(name) || v->shape.size() != 2) continue;
      if (keep && std::regex_search(std::string(name), *keep)) continue;
      if (std::string(name) == "output.weight" && calibrated) {
        // A separate head is a linear layer like the others: smoothed into the final norm (smoothquant),
        // GPTQ, rotated (--rotate), searched on its captured inputs; activations per token.
        run.capture.clear();
        run.capture.want(v->data);
        run_calibration(model, windows, &run.capture, pool, /*all_logits=*/true);
        const LinearGroup head{{name}, "output_norm.weight", "output_norm.bias", ""};
        Status st = quantize_layer_w8a8(run, {head}, -1);
        if (!st.ok()) return fail(st);
        continue;
      }
      W8A8Spec es;  // per row, round to nearest
      auto r = quantize_i8ch(run.f32.at(name), v->rows(), v->cols(), es, nullptr, &pool);
      if (!r.ok()) return fail(r.status().with_context(name));
      run.i8[name] = std::move(r).value();
      std::fprintf(stderr, "[embeddings/head] %s i8_ch rtn channel%s\n", name,
                   std::string(name) == "output.weight" ? ", activations per token" : "");
    }
  }

  // The output: quantized weights as blocks, F16 fallbacks and folded norms from the working copy,
  // everything else as in the source.
  auto out = std::make_shared<MemoryWeightSource>(output);
  out->mutable_metadata() = src->metadata();
  std::map<std::string, DType> write_type;
  for (const NamedTensor& t : src->tensors()) {
    auto q = run.packed.find(t.name);
    if (auto w = run.i8.find(t.name); w != run.i8.end()) {
      // The extension type and its companions (docs/FORMATS.md): codes, then ".scale", ".act_scale".
      TensorView v;
      v.type = DType::kI8Ch;
      v.shape = t.view.shape;
      v.data = reinterpret_cast<const uint8_t*>(w->second.codes.data());
      v.nbytes = w->second.codes.size();
      out->add_tensor(t.name, v);
      write_type[t.name] = DType::kI8Ch;
      TensorView sc;
      sc.type = DType::kF32;
      sc.shape = {t.view.shape[0]};
      sc.data = reinterpret_cast<const uint8_t*>(w->second.row_scale.data());
      sc.nbytes = w->second.row_scale.size() * sizeof(float);
      out->add_tensor(t.name + ".scale", sc);
      if (w->second.act_scale > 0.0f) {
        sc.shape = {1};
        sc.data = reinterpret_cast<const uint8_t*>(&w->second.act_scale);
        sc.nbytes = sizeof(float);
        out->add_tensor(t.name + ".act_scale", sc);
      }
      if (!w->second.rot.empty()) {
        sc.shape = {w->second.rot_m, w->second.rot_m};
        sc.data = reinterpret_cast<const uint8_t*>(w->second.rot.data());
        sc.nbytes = w->second.rot.size() * sizeof(float);
        out->add_tensor(t.name + ".rot", sc);
        write_type[t.name + ".rot"] = DType::kF32;
      }
    } else if (q != run.packed.end()) {
      TensorView v;
      v.type = qtype;
      v.shape = t.view.shape;
      v.data = q->second.data();
      v.nbytes = q->second.size();
      out->add_tensor(t.name, v);
      write_type[t.name] = qtype;
    } else if (run.as_f16.count(t.name) || run.folded.count(t.name)) {
      out->add_tensor(t.name, *view_of(t.name));
      write_type[t.name] = run.as_f16.count(t.name) ? DType::kF16 : DType::kF32;
    } else {
      out->add_tensor(t.name, t.view);
      write_type[t.name] = t.view.type;
      const bool table = t.name == "token_embd.weight" || t.name == "output.weight";
      if (embed_type && table && is_float_type(t.view.type) && !(keep && std::regex_search(t.name, *keep))) {
        write_type[t.name] = *embed_type;  // converted by write_gguf_model (llama.cpp's quantizers)
      }
    }
  }
  const uint32_t file_type = gspec.type == GridType::kQ4_0 ? 2 : gspec.type == GridType::kQ4_1 ? 3 : 7;
  out->mutable_metadata().set("general.file_type", MetaValue::from_u32(file_type));
  std::string how = a.method + " " + (w8a8 ? "i8_ch" : std::string(dtype_name(qtype))) + " " + gran;
  if (w8a8) {
    how = a.method + (a.sq_weights == "gptq" ? " (gptq weights)" : "") + " w8a8 i8_ch " + a.granularity +
          ", activations " + a.act + (a.rotate ? ", inputs rotated where it helps" : "");
  }
  if (a.smooth_only) how = "smoothquant smoothing only, weights f32";
  if (a.method == "smoothquant") {
    how += a.sq_alpha >= 0.0f ? ", alpha " + std::to_string(a.sq_alpha) : std::string(", alpha searched per input");
  }
  out->mutable_metadata().set("llmopt.quantization", MetaValue::from_string(how));
  ConvertOptions opts;
  opts.outtype = grid_dtype(gspec.type);  // file-level default; the tensors carry their own types
  opts.pool = &pool;
  opts.type_for = [&](const std::string& name, DType dflt) -> DType {
    auto it = write_type.find(name);
    return it == write_type.end() ? dflt : it->second;
  };
  Status st = write_gguf_model(*out, output, opts);
  if (!st.ok()) return fail(st);
  auto out_model = load_model(output);
  if (!out_model.ok()) return fail(out_model.status().with_context("reading back " + output));
  const uint64_t in_bytes = path_bytes(input), out_bytes = path_bytes(output);
  std::fprintf(stderr, "wrote %s (%s, %s)\n", output.c_str(), how.c_str(), a.asym ? "asym" : "sym");
  std::fprintf(stderr, "size: %s -> %s (%.2fx smaller)\n", human_bytes(static_cast<double>(in_bytes)).c_str(),
               human_bytes(static_cast<double>(out_bytes)).c_str(),
               out_bytes > 0 ? static_cast<double>(in_bytes) / static_cast<double>(out_bytes) : 0.0);
  std::fprintf(stderr, "bits per weight: %.2f -> %.2f\n", bits_per_weight(**in_model), bits_per_weight(**out_model));
  return 0;
}

}  // namespace llmopt::cli
