// `llmopt quantize --method`: see quantize_method.h. This file is the pipeline (flags, the F32 working
// copy, the layers in order, the output file); the per-layer quantizers and shared state are in
// quantize_run.h.
#include <cstdio>
#include <cstring>
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
double bits_per_weight(const Model& m) {
  const uint64_t n = weight_elements(m);
  return n > 0 ? static_cast<double>(m.weight_bytes()) * 8.0 / static_cast<double>(n) : 0.0;
}

int run_quantize_method(const std::string& input, const std::string& output, const std::string& keep_re,
                        const std::string& tokenizer_path, int threads, const MethodArgs& args) {
  using namespace quant;
  auto plan = plan_method(args, keep_re);
  if (!plan.ok()) return fail(plan.status());
  const MethodArgs& a = plan->a;
  const bool w8a8 = plan->w8a8, calibrated = plan->calibrated;
  const GridSpec& gspec = plan->gspec;
  const W8A8Spec& w8spec = plan->w8spec;
  const std::optional<DType>& embed_type = plan->embed_type;
  const std::optional<std::regex>& keep = plan->keep;
  {
    std::error_code ec;
    if (std::filesystem::equivalent(input, output, ec)) {
      return fail("the output " + output + " is the input; write to another file");
    }
  }
  const bool need_windows = calibrated || a.tune_steps > 0;
  std::string calib_text;
  if (need_windows) {
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
  std::map<std::string, float*> f32;
  auto work = f32_copy_of(src, &f32);
  auto model_or = load_model_from_source(work, lo);
  if (!model_or.ok()) return fail(model_or.status());
  const Model& model = **model_or;
  const ModelConfig& cfg = model.config();
  // Grid GPTQ (not W8A8): each linear group's inputs captured after the groups before it are quantized,
  // and the unquantized model (ref, a second F32 copy) supplies the target (quant/gptq_target.h).
  const bool per_group = a.method == "gptq" && !w8a8 && !a.gptq_per_layer;
  std::shared_ptr<MemoryWeightSource> ref;
  std::unique_ptr<Model> ref_model_holder;
  if (per_group) {
    ref = f32_copy_of(src, nullptr);
    auto rm = load_model_from_source(ref, lo);
    if (!rm.ok()) return fail(rm.status());
    ref_model_holder = std::move(rm).value();
  }

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
  if (need_windows) {
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
  run.windows = &windows;
  run.ref = ref;
  run.ref_model = ref_model_holder.get();
  run.gspec = gspec;
  run.w8spec = w8spec;
  run.qtype = a.compact ? DType::kQ4_1G128 : grid_dtype(gspec.type);
  run.gran = gspec.group_size == 0 ? "channel" : "g" + std::to_string(gspec.group_size);
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
    if (run.ref_model) {
      run.ref_capture.clear();
      for (const LinearGroup& g : groups) {
        if (!g.weights.empty()) run.ref_capture.want(ref->find(g.weights[0])->data, il);
      }
      run_calibration(*run.ref_model, windows, &run.ref_capture, pool);
    }
    if (per_group) {
      for (const LinearGroup& g : groups) {
        if (g.weights.empty()) continue;
        run.capture.clear();
        run.capture.want(view_of(g.weights[0])->data, il);
        run_calibration(model, windows, &run.capture, pool);
        Status st = quantize_layer_grid(run, {g}, il);
        if (!st.ok()) return fail(st);
      }
      continue;
    }
    if (calibrated) {
      run.capture.clear();
      for (const LinearGroup& g : groups) {
        if (!g.weights.empty()) run.capture.want(view_of(g.weights[0])->data, il);
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

  if (a.tune_steps > 0) {
    Status st = tune_grids(run, src, windows);
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

  std::string how;
  {
    Status st = write_method_output(run, *src, output, keep, embed_type, w8a8, pool, &how);
    if (!st.ok()) return fail(st);
  }
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
