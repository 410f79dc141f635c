// bind_weights: resolves llama.cpp tensor names into typed handles once, at load. Every tensor's
// presence, shape and type is checked here, so the forward pass can trust what it is given.
#include "model/weights.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "kernels/rotate.h"

namespace llmopt {

namespace {

enum class Kind {
  kMatrix,  // 2-D weight of a matrix product: any type the kernels can dequantize, or kI8Ch
  kTable,   // 2-D lookup table (embeddings): rows are read one at a time (dequantize_view_row)
  kVector,  // 1-D, f32 only (norm weights, biases)
};

class Binder {
 public:
  explicit Binder(const WeightSource& src) : src_(src) {}

  // Binds `name` into *out; absent optional tensors leave *out empty.
  Status bind(const std::string& name, Kind kind, std::vector<int64_t> expected, bool required, TensorView* out) {
    const TensorView* t = src_.find(name);
    if (t == nullptr || !t->present()) {
      if (required) return error("missing tensor '" + name + "'");
      return ok_status();
    }
    if (t->shape != expected) {
      return error("tensor '" + name + "' has shape " + shape_to_string(t->shape) + ", expected " +
                   shape_to_string(expected));
    }
    LLMOPT_RETURN_IF_ERROR(check_type(name, *t, kind));
    *out = *t;
    if (t->type == DType::kI8Ch) return attach_i8ch_scales(name, out);
    return ok_status();
  }

  // kI8Ch: the per-row scales "<name>.scale" (f32 [rows], finite, >= 0) are required; the static
  // activation scale "<name>.act_scale" (f32 [1], finite, > 0) is optional.
  Status attach_i8ch_scales(const std::string& name, TensorView* out) {
    const TensorView* s = src_.find(name + ".scale");
    if (s == nullptr || !s->present()) {
      return error("tensor '" + name + "' has type i8_ch but its row scales '" + name + ".scale' are missing");
    }
    if (s->type != DType::kF32 || s->shape != std::vector<int64_t>{out->rows()} ||
        s->nbytes != static_cast<size_t>(out->rows()) * sizeof(float)) {
      return error("tensor '" + name + ".scale' must be f32 of shape [" + std::to_string(out->rows()) + "], got " +
                   dtype_name(s->type) + " " + shape_to_string(s->shape));
    }
    if (reinterpret_cast<uintptr_t>(s->data) % alignof(float) != 0) {
      return error("tensor '" + name + ".scale' is not 4-byte aligned");
    }
    const float* sc = s->f32();
    for (int64_t r = 0; r < out->rows(); ++r) {
      if (!std::isfinite(sc[r]) || sc[r] < 0.0f) {
        return error("tensor '" + name + ".scale' has a bad scale at row " + std::to_string(r) + ": " +
                     std::to_string(sc[r]));
      }
    }
    out->row_scale = sc;
    if (const TensorView* a = src_.find(name + ".act_scale"); a != nullptr && a->present()) {
      float v = 0.0f;
      if (a->type != DType::kF32 || a->numel() != 1 || a->nbytes != sizeof(float)) {
        return error("tensor '" + name + ".act_scale' must be one f32 value, got " + dtype_name(a->type) + " " +
                     shape_to_string(a->shape));
      }
      std::memcpy(&v, a->data, sizeof(float));
      if (!std::isfinite(v) || v <= 0.0f) {
        return error("tensor '" + name + ".act_scale' must be a positive activation scale, got " + std::to_string(v));
      }
      out->act_scale = v;
    }
    if (const TensorView* q = src_.find(name + ".rot"); q != nullptr && q->present()) return attach_rotation(name, *q, out);
    return ok_status();
  }

  // The optional input rotation "<name>.rot": f32 [m][m], orthogonal, rows of the weight n = p * m with p
  // a power of two (kernels/rotate.h).
  static Status attach_rotation(const std::string& name, const TensorView& q, TensorView* out) {
    const std::string what = "tensor '" + name + ".rot'";
    if (q.type != DType::kF32 || q.shape.size() != 2 || q.shape[0] != q.shape[1] || q.shape[0] < 1 ||
        q.nbytes != static_cast<size_t>(q.numel()) * sizeof(float)) {
      return error(what + " must be a square f32 matrix, got " + dtype_name(q.type) + " " + shape_to_string(q.shape));
    }
    if (reinterpret_cast<uintptr_t>(q.data) % alignof(float) != 0) return error(what + " is not 4-byte aligned");
    const int64_t m = q.shape[0];
    LLMOPT_RETURN_IF_ERROR(kernels::check_rotation_shape(out->cols(), m).with_context(what));
    const float* v = q.f32();
    for (int64_t i = 0; i < m; ++i) {  // Q Q^T = I, within f32 rounding
      for (int64_t j = 0; j < m; ++j) {
        double dot = 0.0;
        for (int64_t c = 0; c < m; ++c) dot += static_cast<double>(v[i * m + c]) * v[j * m + c];
        if (!std::isfinite(dot) || std::fabs(dot - (i == j ? 1.0 : 0.0)) > 1e-4) {
          return error(what + " is not orthogonal (row " + std::to_string(i) + " . row " + std::to_string(j) +
                       " = " + std::to_string(dot) + ")");
        }
      }
    }
    out->rot = v;
    out->rot_m = m;
    return ok_status();
  }

  static Status check_type(const std::string& name, const TensorView& t, Kind kind) {
    if (kind == Kind::kVector && t.type != DType::kF32) {
      return error("tensor '" + name + "' has type " + dtype_name(t.type) +
                   "; norm and bias tensors must be f32");
    }
    // Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K rows regrouped at load (LoadOptions::repack) are read through dequantize_view_row.
    if (t.type != DType::kI8Ch && !kernels::is_r16(t.type) && !kernels::can_dequantize(t.type)) {
      return error("tensor '" + name + "' has type " + dtype_name(t.type) + ", which llmopt cannot compute with");
    }
    const DTypeInfo& info = dtype_info(t.type);
    std::optional<size_t> row_bytes = dtype_row_bytes(t.type, t.cols());
    if (!row_bytes.has_value()) {
      return error("tensor '" + name + "' has rows of " + std::to_string(t.cols()) +
                   " elements, not a multiple of the " + info.name + " block size " +
                   std::to_string(info.block_size));
    }
    if (*row_bytes * static_cast<size_t>(t.rows()) != t.nbytes) {
      return error("tensor '" + name + "' holds " + std::to_string(t.nbytes) + " bytes, expected " +
                   std::to_string(*row_bytes * static_cast<size_t>(t.rows())) + " for shape " +
                   shape_to_string(t.shape) + " of type " + info.name);
    }
    return ok_status();
  }

 private:
  const WeightSource& src_;
};

std::string blk_name(int il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

}  // namespace

Result<Weights> bind_weights(const WeightSource& src, ModelConfig& cfg) {
  Binder b(src);
  Weights w;
  const int64_t n_embd = cfg.n_embd;
  const int64_t q_dim = cfg.q_dim();
  const int64_t kv_dim = cfg.kv_dim();
  const int64_t n_ff = cfg.n_ff;
  const bool gpt2 = cfg.arch == Arch::kGpt2;

  // token_embd fixes n_vocab when the metadata did not.
  if (cfg.n_vocab == 0) {
    const TensorView* te = src.find("token_embd.weight");
    if (te == nullptr) return error("missing tensor 'token_embd.weight'");
    if (te->shape.size() != 2 || te->shape[0] <= 0 || te->shape[0] > INT32_MAX) {
      return error("tensor 'token_embd.weight' has shape " + shape_to_string(te->shape) + ", expected [n_vocab, " +
                   std::to_string(n_embd) + "]");
    }
    cfg.n_vocab = static_cast<int32_t>(te->shape[0]);
  }
  const int64_t n_vocab = cfg.n_vocab;

  LLMOPT_RETURN_IF_ERROR(b.bind("token_embd.weight", Kind::kTable, {n_vocab, n_embd}, true, &w.tok_embd));
  if (gpt2) {
    LLMOPT_RETURN_IF_ERROR(
        b.bind("position_embd.weight", Kind::kTable, {cfg.n_ctx_train, n_embd}, true, &w.pos_embd));
  }
  LLMOPT_RETURN_IF_ERROR(b.bind("output_norm.weight", Kind::kVector, {n_embd}, true, &w.output_norm));
  if (gpt2) {
    LLMOPT_RETURN_IF_ERROR(b.bind("output_norm.bias", Kind::kVector, {n_embd}, true, &w.output_norm_b));
  }
  LLMOPT_RETURN_IF_ERROR(b.bind("output.weight", Kind::kMatrix, {n_vocab, n_embd}, false, &w.output));
  cfg.tied_head = !w.output.present();
  if (cfg.tied_head) w.output = w.tok_embd;

  w.layers.resize(cfg.n_layer);
  for (int il = 0; il < cfg.n_layer; ++il) {
    LayerWeights& l = w.layers[il];
    LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_norm.weight"), Kind::kVector, {n_embd}, true, &l.attn_norm));
    LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_norm.weight"), Kind::kVector, {n_embd}, true, &l.ffn_norm));
    LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_output.weight"), Kind::kMatrix, {n_embd, q_dim}, true, &l.wo));
    LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_up.weight"), Kind::kMatrix, {n_ff, n_embd}, true, &l.w_up));
    LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_down.weight"), Kind::kMatrix, {n_embd, n_ff}, true, &l.w_down));
    if (gpt2) {
      const int64_t qkv_dim = q_dim + 2 * kv_dim;
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_norm.bias"), Kind::kVector, {n_embd}, true, &l.attn_norm_b));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_qkv.weight"), Kind::kMatrix, {qkv_dim, n_embd}, true, &l.wqkv));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_qkv.bias"), Kind::kVector, {qkv_dim}, true, &l.bqkv));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_output.bias"), Kind::kVector, {n_embd}, true, &l.bo));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_norm.bias"), Kind::kVector, {n_embd}, true, &l.ffn_norm_b));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_up.bias"), Kind::kVector, {n_ff}, true, &l.b_up));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_down.bias"), Kind::kVector, {n_embd}, true, &l.b_down));
    } else {
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_q.weight"), Kind::kMatrix, {q_dim, n_embd}, true, &l.wq));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_k.weight"), Kind::kMatrix, {kv_dim, n_embd}, true, &l.wk));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "attn_v.weight"), Kind::kMatrix, {kv_dim, n_embd}, true, &l.wv));
      LLMOPT_RETURN_IF_ERROR(b.bind(blk_name(il, "ffn_gate.weight"), Kind::kMatrix, {n_ff, n_embd}, true, &l.w_gate));
    }
  }
  return w;
}

}  // namespace llmopt
