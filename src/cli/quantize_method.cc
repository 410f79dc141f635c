// `llmopt quantize --method`: see quantize_method.h.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "cli/common.h"
#include "cli/quantize_method.h"
#include "cli/quantize_w8a8.h"
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

bool is_plain(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// ---- --method: RTN / GPTQ / AWQ on GGUF block grids ----
//
// Pipeline: every plain-float tensor is copied to F32 (the working copy) and a Model runs on it. Layers
// are quantized in order; before layer i, the calibration windows run through the working model (whose
// layers < i already hold their quantized values) and a LinearObserver records the inputs of layer i's
// linear weights. Each weight is then quantized on its grid, packed into GGUF blocks, and the block
// dequantization of those blocks is written back into the working copy. AWQ's per-input-channel scales s
// are folded exactly: 1/s goes into the norm that produces the input (attn_norm for Q/K/V or the fused
// QKV, ffn_norm for gate/up or up; weight and bias), and W·diag(s) is quantized (grid_quantize_awq: the
// search measures the grid's own values). LLaMA's ffn_down input is silu(gate) * up, linear in up's
// output rows, so its 1/s is folded into ffn_up's rows (searched before the gate/up group is
// quantized). attn_output (and GPT-2's ffn_down, after a GELU) have nothing exact to fold into, so AWQ
// uses s = 1 there and searches only the per-group clipping.
// token_embd, output and vectors stay in the source's type (norms folded by AWQ are written as F32).


// Records the input rows of the weights it was told about (keyed by the weight's data pointer).
class InputCapture : public LinearObserver {
 public:
  void want(const uint8_t* weight) { rows_[weight]; }
  std::vector<float>& rows(const uint8_t* weight) { return rows_[weight]; }
  void clear() { rows_.clear(); }
  void on_linear_input(const TensorView& w, const float* x, int64_t n) override {
    auto it = rows_.find(w.data);
    if (it == rows_.end()) return;
    it->second.insert(it->second.end(), x, x + n * w.cols());
  }

 private:
  std::map<const uint8_t*, std::vector<float>> rows_;
};

struct LinearGroup {
  std::vector<std::string> weights;  // share one input
  std::string norm_w, norm_b;        // the norm producing that input ("" when none)
  // A weight whose output rows enter this input linearly (LLaMA: ffn_up, through silu(gate) * up), so
  // AWQ can fold 1/s into its rows instead of into a norm.
  std::string fold_rows;
};

std::vector<LinearGroup> layer_groups(Arch arch, int32_t il) {
  const std::string b = "blk." + std::to_string(il) + ".";
  if (arch == Arch::kGpt2) {
    return {{{b + "attn_qkv.weight"}, b + "attn_norm.weight", b + "attn_norm.bias", ""},
            {{b + "attn_output.weight"}, "", "", ""},
            {{b + "ffn_up.weight"}, b + "ffn_norm.weight", b + "ffn_norm.bias", ""},
            {{b + "ffn_down.weight"}, "", "", ""}};
  }
  return {{{b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"}, b + "attn_norm.weight", "", ""},
          {{b + "attn_output.weight"}, "", "", ""},
          {{b + "ffn_gate.weight", b + "ffn_up.weight"}, b + "ffn_norm.weight", "", ""},
          {{b + "ffn_down.weight"}, "", "", b + "ffn_up.weight"}};
}

void run_calibration(const Model& m, const std::vector<std::vector<int32_t>>& windows, LinearObserver* obs,
                     ThreadPool& pool) {
  const int32_t bs = 16;
  const int32_t len = static_cast<int32_t>(windows[0].size());
  const int32_t n_blocks = (len + bs - 1) / bs;
  KvStore kv(m.config().n_layer, m.config().kv_dim(), n_blocks, bs);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  std::iota(table.begin(), table.end(), 0);
  ForwardOutput out;
  for (const auto& w : windows) {
    SeqInput in;
    in.tokens = w;
    in.pos0 = 0;
    in.block_table = table;
    in.logits = LogitsMode::kNone;
    m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool, obs);
  }
}

// At most max_rows of the n rows of x (evenly strided), for AWQ's search.
std::vector<float> subsample_rows(const std::vector<float>& x, int64_t cols, int64_t max_rows) {
  const int64_t n = static_cast<int64_t>(x.size()) / cols;
  if (n <= max_rows) return x;
  std::vector<float> out(static_cast<size_t>(max_rows * cols));
  for (int64_t i = 0; i < max_rows; ++i) {
    const int64_t r = i * n / max_rows;
    std::memcpy(out.data() + i * cols, x.data() + r * cols, static_cast<size_t>(cols) * sizeof(float));
  }
  return out;
}

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
  if (a.act_order && a.method != "gptq") return fail("--act-order applies to --method gptq only");
  std::optional<DType> embed_type;
  if (!a.embed_type.empty()) {
    embed_type = dtype_from_name(a.embed_type);
    if (!embed_type || (!kernels::can_quantize(*embed_type) && *embed_type != DType::kF32) ||
        *embed_type == DType::kQ4_1G128) {
      return fail("--embed-type '" + a.embed_type + "' is not a type llmopt writes (use f32, f16, bf16, q8_0, q6_k, ...)");
    }
  }
  if (a.smooth_only && a.method != "smoothquant") return fail("--smooth-only applies to --method smoothquant only");
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
  w8spec.gptq = a.method == "gptq";
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
  const bool calibrated = a.method != "rtn" || a.act == "static" || a.act == "auto";
  if (calibrated && a.calib.empty()) {
    return fail((a.method == "rtn" ? std::string("--act static") : "--method " + a.method) +
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
    if (t.view.shape.size() >= 2 && !is_plain(t.view.type)) {
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
    if (!is_plain(t.view.type)) {
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
  const DType qtype = a.compact ? DType::kQ4_1G128 : grid_dtype(gspec.type);
  const std::string gran = gspec.group_size == 0 ? "channel" : "g" + std::to_string(gspec.group_size);
  std::map<std::string, std::vector<uint8_t>> packed;  // quantized weights
  std::map<std::string, I8ChWeight> i8;                 // W8A8 weights
  std::set<std::string> as_f16;                         // kept or not fitting the grid
  std::set<std::string> folded;                         // norms changed by AWQ
  InputCapture capture;

  auto view_of = [&](const std::string& name) -> const TensorView* { return work->find(name); };
  auto to_f16_in_place = [&](const std::string& name) {
    const TensorView* v = view_of(name);
    float* p = f32.at(name);
    for (int64_t i = 0; i < v->numel(); ++i) p[i] = fp16_to_fp32(fp32_to_fp16(p[i]));
    as_f16.insert(name);
  };
  // Packs a quantized weight and writes its block dequantization back into the working copy.
  auto store = [&](const std::string& name, const GridTensor& t) {
    std::vector<uint8_t> blocks = a.compact ? pack_q4_1_g128(t) : t.pack();
    kernels::dequantize_row(qtype, blocks.data(), f32.at(name), t.rows * t.cols);
    packed[name] = std::move(blocks);
  };

  // W8A8 for one layer, on the inputs captured for it. SmoothQuant folds 1/s where AWQ does (the norm
  // producing the input, or ffn_up's rows for LLaMA's ffn_down, searched first) and leaves s = 1 where
  // nothing can take it (attn_output, GPT-2's ffn_down). The static activation scale of an input is
  // max|x| / 127 over its (smoothed) calibration rows; the working copy gets the quantized weights
  // (activation rounding is not simulated there).
  auto quantize_layer_w8a8 = [&](const std::vector<LinearGroup>& groups, int32_t il) -> Status {
    const bool smooth = a.method == "smoothquant";
    auto weights_of = [&](const LinearGroup& g) {
      std::vector<std::pair<const float*, int64_t>> ws;
      for (const std::string& name : g.weights) ws.emplace_back(f32.at(name), view_of(name)->rows());
      return ws;
    };
    // SmoothQuant's search for one input (cli/quantize_w8a8.h).
    auto search = [&](const LinearGroup& g, const std::vector<float>& x, bool can_smooth) {
      SmoothSearch so;
      so.can_smooth = can_smooth;
      so.static_act = a.act != "dynamic";
      so.per_tensor = w8spec.per_tensor;
      so.alpha = a.sq_alpha;
      auto r = search_smoothing(weights_of(g), x, view_of(g.weights[0])->cols(), so, pool);
      if (!r.ok() || a.act != "auto") return r;
      // auto: per-token dynamic scales where a static one costs more than twice their output error.
      so.static_act = false;
      auto d = search_smoothing(weights_of(g), x, view_of(g.weights[0])->cols(), so, pool);
      if (!d.ok()) return d;
      if (r->error <= 2.0 * d->error) return r;
      d->static_act = false;
      return d;
    };
    std::map<std::string, SmoothChoice> pre;
    if (smooth) {
      for (const LinearGroup& g : groups) {
        if (g.weights.empty() || g.fold_rows.empty() || !f32.count(g.fold_rows)) continue;
        const int64_t cols = view_of(g.weights[0])->cols();
        const TensorView* t = view_of(g.fold_rows);
        const std::vector<float>& x = capture.rows(view_of(g.weights[0])->data);
        if (t->rows() != cols || x.empty()) continue;
        auto ch = search(g, x, true);
        if (!ch.ok()) return ch.status().with_context(g.weights[0]);
        if (!ch->s.empty()) {
          float* p = f32.at(g.fold_rows);
          for (int64_t row = 0; row < t->rows(); ++row) {
            for (int64_t c = 0; c < t->cols(); ++c) p[row * t->cols() + c] /= ch->s[row];
          }
        }
        pre[g.weights[0]] = std::move(ch).value();
      }
    }
    for (const LinearGroup& g : groups) {
      if (g.weights.empty()) continue;
      const int64_t cols = view_of(g.weights[0])->cols();
      std::vector<float> x;
      if (calibrated) {
        x = capture.rows(view_of(g.weights[0])->data);
        if (x.empty()) return error("no calibration input reached " + g.weights[0]);
      }
      SmoothChoice choice;  // no smoothing, no clipping unless SmoothQuant chooses them
      const bool foldable = !g.norm_w.empty() && f32.count(g.norm_w) > 0;
      if (auto it = pre.find(g.weights[0]); it != pre.end()) {
        choice = it->second;
      } else if (smooth || a.act == "auto") {
        auto ch = search(g, x, smooth && foldable);
        if (!ch.ok()) return ch.status().with_context(g.weights[0]);
        choice = std::move(ch).value();
      }
      const std::vector<float>& s = choice.s;
      if (!s.empty() && foldable) {
        for (const std::string& norm : {g.norm_w, g.norm_b}) {
          if (norm.empty() || !f32.count(norm)) continue;
          float* p = f32.at(norm);
          for (int64_t c = 0; c < cols; ++c) p[c] /= s[c];
          folded.insert(norm);
        }
      }
      if (!s.empty()) {
        for (const std::string& name : g.weights) {
          float* p = f32.at(name);
          const int64_t rows = view_of(name)->rows();
          for (int64_t r = 0; r < rows; ++r) {
            for (int64_t c = 0; c < cols; ++c) p[r * cols + c] *= s[c];
          }
        }
        divide_columns(x, cols, s);
      }
      float act_scale = 0.0f;
      if (a.act == "static" || (a.act == "auto" && choice.static_act)) {
        auto sc = static_act_scale(x, choice.act_clip);
        if (!sc.ok()) return sc.status().with_context(g.weights[0]);
        act_scale = *sc;
      }
      std::vector<float> h;
      if (w8spec.gptq) {
        HessianAccumulator acc(cols);
        LLMOPT_RETURN_IF_ERROR(acc.add(x.data(), static_cast<int64_t>(x.size()) / cols).with_context(g.weights[0]));
        auto hv = acc.hessian();
        if (!hv.ok()) return hv.status().with_context(g.weights[0]);
        h = std::move(hv).value();
      }
      for (const std::string& name : g.weights) {
        if (a.smooth_only) {  // the smoothed f32 weight, nothing rounded
          folded.insert(name);
          continue;
        }
        auto r = quantize_i8ch(f32.at(name), view_of(name)->rows(), cols, w8spec, w8spec.gptq ? &h : nullptr, &pool);
        if (!r.ok()) return r.status().with_context(name);
        r->act_scale = act_scale;
        i8[name] = std::move(r).value();
        std::string note;
        if (smooth || a.act == "auto") {
          char buf[160];
          if (!s.empty()) {
            std::snprintf(buf, sizeof(buf), ", smoothed alpha %.2f", choice.alpha);
          } else {
            std::snprintf(buf, sizeof(buf), ", not smoothed (%s)", foldable || pre.count(g.weights[0])
                                                                    ? "no alpha helps" : "nothing to fold 1/s into");
          }
          note = buf;
          if (act_scale > 0.0f) {
            std::snprintf(buf, sizeof(buf), ", range clip %.1f", choice.act_clip);
            note += buf;
          }
          std::snprintf(buf, sizeof(buf), " (output error %.3g, plain w8a8 %.3g)", choice.error, choice.error_plain);
          note += buf;
        }
        std::fprintf(stderr, "[layer %d/%d] %s i8_ch %s %s, activations %s%s\n", il + 1, cfg.n_layer, name.c_str(),
                     a.method.c_str(), a.granularity.c_str(),
                     act_scale > 0.0f ? ("static (scale " + std::to_string(act_scale) + ")").c_str() : "per token",
                     note.c_str());
      }
      std::fflush(stderr);
    }
    return ok_status();
  };

  for (int32_t il = 0; il < cfg.n_layer; ++il) {
    std::vector<LinearGroup> groups = layer_groups(cfg.arch, il);
    // Which weights get quantized; the others are written as F16.
    for (LinearGroup& g : groups) {
      std::vector<std::string> kept;
      for (const std::string& name : g.weights) {
        const TensorView* v = view_of(name);
        if (v == nullptr || !f32.count(name)) continue;
        if (keep && std::regex_search(name, *keep)) {
          to_f16_in_place(name);
          std::fprintf(stderr, "[layer %d/%d] %s f16 (--keep)\n", il + 1, cfg.n_layer, name.c_str());
          continue;
        }
        Status fit = w8a8 ? ok_status() : validate_grid(gspec, v->rows(), v->cols());
        if (!fit.ok()) {
          log_warn("quantize: tensor '" + name + "': " + fit.message() + "; writing it as f16");
          to_f16_in_place(name);
          continue;
        }
        kept.push_back(name);
      }
      g.weights = kept;
    }
    if (calibrated) {
      capture.clear();
      for (const LinearGroup& g : groups) {
        if (!g.weights.empty()) capture.want(view_of(g.weights[0])->data);
      }
      run_calibration(model, windows, &capture, pool);
    }
    if (w8a8) {
      Status st = quantize_layer_w8a8(groups, il);
      if (!st.ok()) return fail(st);
      continue;
    }
    // AWQ's search over the rows of all weights of a group at once (one s for their shared input).
    auto awq_search = [&](const LinearGroup& g, bool scale_search) -> Result<GridAwqResult> {
      const int64_t cols = view_of(g.weights[0])->cols();
      int64_t rows_total = 0;
      for (const std::string& name : g.weights) rows_total += view_of(name)->rows();
      std::vector<float> wcat;
      wcat.reserve(static_cast<size_t>(rows_total * cols));
      for (const std::string& name : g.weights) {
        const float* p = f32.at(name);
        wcat.insert(wcat.end(), p, p + view_of(name)->numel());
      }
      const std::vector<float> xs = subsample_rows(capture.rows(view_of(g.weights[0])->data), cols, 1024);
      GridAwqOptions ao;
      ao.pool = &pool;
      ao.scale_search = scale_search;
      return grid_quantize_awq(wcat.data(), rows_total, cols, xs.data(), static_cast<int64_t>(xs.size()) / cols,
                               gspec, ao);
    };
    // Groups that fold 1/s into another weight's rows are searched first, before that weight is
    // quantized (the calibration inputs are those of the pass above either way).
    std::map<std::string, GridAwqResult> awq_done;
    if (a.method == "awq") {
      for (const LinearGroup& g : groups) {
        if (g.weights.empty() || g.fold_rows.empty()) continue;
        bool target_quantized = false;
        for (const LinearGroup& o : groups) {
          for (const std::string& n : o.weights) target_quantized |= n == g.fold_rows;
        }
        if (!target_quantized || capture.rows(view_of(g.weights[0])->data).empty()) continue;
        auto r = awq_search(g, true);
        if (!r.ok()) return fail(r.status().with_context(g.weights[0]));
        const TensorView* t = view_of(g.fold_rows);
        if (t->rows() != static_cast<int64_t>(r->scales.size())) continue;  // not a row-for-input match
        float* p = f32.at(g.fold_rows);
        for (int64_t row = 0; row < t->rows(); ++row) {
          for (int64_t c = 0; c < t->cols(); ++c) p[row * t->cols() + c] /= r->scales[row];
        }
        awq_done[g.weights[0]] = std::move(r).value();
      }
    }
    for (const LinearGroup& g : groups) {
      if (g.weights.empty()) continue;
      const int64_t cols = view_of(g.weights[0])->cols();
      const std::vector<float>* x = calibrated ? &capture.rows(view_of(g.weights[0])->data) : nullptr;
      const int64_t n_x = x ? static_cast<int64_t>(x->size()) / cols : 0;
      if (calibrated && n_x == 0) return fail("no calibration input reached " + g.weights[0]);
      if (a.method == "gptq") {
        HessianAccumulator acc(cols);
        Status st = acc.add(x->data(), n_x);
        if (!st.ok()) return fail(st.with_context(g.weights[0]));
        auto h = acc.hessian();
        if (!h.ok()) return fail(h.status().with_context(g.weights[0]));
        for (const std::string& name : g.weights) {
          const TensorView* v = view_of(name);
          GridGptqOptions go;
          go.pool = &pool;
          go.act_order = a.act_order;
          auto t = grid_quantize_gptq(f32.at(name), v->rows(), cols, *h, gspec, go);
          if (!t.ok()) return fail(t.status().with_context(name));
          store(name, *t);
          std::fprintf(stderr, "[layer %d/%d] %s %s gptq %s%s\n", il + 1, cfg.n_layer, name.c_str(),
                       dtype_name(qtype), gran.c_str(), a.act_order ? " act-order" : "");
        }
      } else if (a.method == "awq") {
        // One scale vector for all weights that share the input: search on their rows together. 1/s is
        // folded into the norm producing the input, or (ffn_down) into ffn_up's rows above; with
        // neither (attn_output), s = 1 and only the clipping is searched.
        const bool foldable = !g.norm_w.empty() && f32.count(g.norm_w) > 0;
        auto pre = awq_done.find(g.weights[0]);
        Result<GridAwqResult> r = pre != awq_done.end() ? Result<GridAwqResult>(std::move(pre->second))
                                                        : awq_search(g, foldable);
        if (!r.ok()) return fail(r.status().with_context(g.weights[0]));
        const bool scaled = foldable || pre != awq_done.end();
        const GridTensor& qt = r->quantized;
        const int64_t gpr = qt.groups_per_row();
        int64_t row0 = 0;
        for (const std::string& name : g.weights) {
          const int64_t rows = view_of(name)->rows();
          GridTensor part;
          part.spec = gspec;
          part.rows = rows;
          part.cols = cols;
          part.codes.assign(qt.codes.begin() + row0 * cols, qt.codes.begin() + (row0 + rows) * cols);
          part.params.assign(qt.params.begin() + row0 * gpr, qt.params.begin() + (row0 + rows) * gpr);
          store(name, part);
          row0 += rows;
          std::fprintf(stderr, "[layer %d/%d] %s %s awq %s alpha %.2f%s (output error %.3g, rtn %.3g)\n", il + 1,
                       cfg.n_layer, name.c_str(), dtype_name(qtype), gran.c_str(), r->alpha,
                       scaled ? "" : " s=1 (nothing to fold 1/s into)", r->output_error, r->rtn_error);
        }
        // The input is divided by s: fold 1/s into the norm's weight (and bias).
        if (foldable) {
          const std::vector<float>& s = r->scales;
          for (const std::string& norm : {g.norm_w, g.norm_b}) {
            if (norm.empty() || !f32.count(norm)) continue;
            float* p = f32.at(norm);
            for (int64_t c = 0; c < cols; ++c) p[c] /= s[c];
            folded.insert(norm);
          }
        }
      } else {
        const char* how = "rtn";
        for (const std::string& name : g.weights) {
          const TensorView* v = view_of(name);
          auto t = grid_quantize_rtn(f32.at(name), v->rows(), cols, gspec);
          if (!t.ok()) return fail(t.status().with_context(name));
          store(name, *t);
          std::fprintf(stderr, "[layer %d/%d] %s %s %s %s\n", il + 1, cfg.n_layer, name.c_str(), dtype_name(qtype),
                       how, gran.c_str());
        }
      }
      std::fflush(stderr);
    }
  }

  // W8A8 also covers the token embeddings and the head (round-to-nearest per row; the head's activations
  // per token): like a Q8_0 file, every matrix is 8-bit, and the head is an int8 x int8 matmul too.
  if (w8a8 && !a.smooth_only && !embed_type) {
    for (const char* name : {"token_embd.weight", "output.weight"}) {
      const TensorView* v = view_of(name);
      if (v == nullptr || !f32.count(name) || v->shape.size() != 2) continue;
      if (keep && std::regex_search(std::string(name), *keep)) continue;
      W8A8Spec es;  // per row, round to nearest
      auto r = quantize_i8ch(f32.at(name), v->rows(), v->cols(), es, nullptr, &pool);
      if (!r.ok()) return fail(r.status().with_context(name));
      i8[name] = std::move(r).value();
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
    auto q = packed.find(t.name);
    if (auto w = i8.find(t.name); w != i8.end()) {
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
    } else if (q != packed.end()) {
      TensorView v;
      v.type = qtype;
      v.shape = t.view.shape;
      v.data = q->second.data();
      v.nbytes = q->second.size();
      out->add_tensor(t.name, v);
      write_type[t.name] = qtype;
    } else if (as_f16.count(t.name) || folded.count(t.name)) {
      out->add_tensor(t.name, *view_of(t.name));
      write_type[t.name] = as_f16.count(t.name) ? DType::kF16 : DType::kF32;
    } else {
      out->add_tensor(t.name, t.view);
      write_type[t.name] = t.view.type;
      const bool table = t.name == "token_embd.weight" || t.name == "output.weight";
      if (embed_type && table && is_plain(t.view.type) && !(keep && std::regex_search(t.name, *keep))) {
        write_type[t.name] = *embed_type;  // converted by write_gguf_model (llama.cpp's quantizers)
      }
    }
  }
  const uint32_t file_type = gspec.type == GridType::kQ4_0 ? 2 : gspec.type == GridType::kQ4_1 ? 3 : 7;
  out->mutable_metadata().set("general.file_type", MetaValue::from_u32(file_type));
  std::string how = a.method + " " + (w8a8 ? "i8_ch" : std::string(dtype_name(qtype))) + " " + gran;
  if (w8a8) how = a.method + " w8a8 i8_ch " + a.granularity + ", activations " + a.act;
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
