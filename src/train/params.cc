// Parameter layout (names and shapes as llama.cpp writes them) and seeded initialization.
#include "train/params.h"

#include <cmath>

#include "train/rng.h"

namespace llmopt::train {

Status validate_train_config(ModelConfig& cfg) {
  const auto positive = [](int32_t v) { return v > 0; };
  if (!positive(cfg.n_vocab) || !positive(cfg.n_ctx_train) || !positive(cfg.n_embd) ||
      !positive(cfg.n_layer) || !positive(cfg.n_head) || !positive(cfg.n_head_kv) || !positive(cfg.n_ff)) {
    return error("every model size (vocab, ctx, dim, layers, heads, kv-heads, ffn) must be positive");
  }
  if (cfg.n_embd % cfg.n_head != 0) {
    return error("dim " + std::to_string(cfg.n_embd) + " is not divisible by heads " +
                 std::to_string(cfg.n_head));
  }
  if (cfg.n_head % cfg.n_head_kv != 0) {
    return error("heads " + std::to_string(cfg.n_head) + " is not divisible by kv-heads " +
                 std::to_string(cfg.n_head_kv));
  }
  cfg.head_dim = cfg.n_embd / cfg.n_head;
  if (cfg.arch == Arch::kGpt2) {
    if (cfg.n_head_kv != cfg.n_head) return error("GPT-2 has kv-heads == heads");
    cfg.n_rot = 0;
  } else {
    if (cfg.head_dim % 2 != 0) {
      return error("LLaMA needs an even head size for RoPE (dim / heads = " + std::to_string(cfg.head_dim) +
                   ")");
    }
    if (cfg.n_rot == 0) cfg.n_rot = cfg.head_dim;
    if (cfg.n_rot % 2 != 0 || cfg.n_rot > cfg.head_dim)
      return error("rotary dimensions must be even, <= head size");
  }
  if (!(cfg.norm_eps > 0.0f)) return error("norm epsilon must be positive");
  return ok_status();
}

ParamLayout make_param_layout(const ModelConfig& cfg) {
  ParamLayout L;
  L.cfg = cfg;
  const int64_t d = cfg.n_embd, q = cfg.q_dim(), kv = cfg.kv_dim(), ff = cfg.n_ff;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool decay) {
    ParamTensor t;
    t.name = name;
    t.numel = 1;
    for (int64_t s : shape) t.numel *= s;
    t.shape = std::move(shape);
    t.offset = L.total;
    t.decay = decay;
    L.total += static_cast<size_t>(t.numel);
    L.tensors.push_back(std::move(t));
    return static_cast<int>(L.tensors.size() - 1);
  };
  auto blk = [](int il, const char* s) { return "blk." + std::to_string(il) + "." + s; };
  const bool gpt2 = cfg.arch == Arch::kGpt2;

  L.tok_embd = add("token_embd.weight", {cfg.n_vocab, d}, false);
  if (gpt2) L.pos_embd = add("position_embd.weight", {cfg.n_ctx_train, d}, false);
  for (int il = 0; il < cfg.n_layer; ++il) {
    LayerParams p;
    p.attn_norm = add(blk(il, "attn_norm.weight"), {d}, false);
    if (gpt2) {
      p.attn_norm_b = add(blk(il, "attn_norm.bias"), {d}, false);
      p.wqkv = add(blk(il, "attn_qkv.weight"), {q + 2 * kv, d}, true);
      p.bqkv = add(blk(il, "attn_qkv.bias"), {q + 2 * kv}, false);
      p.wo = add(blk(il, "attn_output.weight"), {d, q}, true);
      p.bo = add(blk(il, "attn_output.bias"), {d}, false);
      p.ffn_norm = add(blk(il, "ffn_norm.weight"), {d}, false);
      p.ffn_norm_b = add(blk(il, "ffn_norm.bias"), {d}, false);
      p.w_up = add(blk(il, "ffn_up.weight"), {ff, d}, true);
      p.b_up = add(blk(il, "ffn_up.bias"), {ff}, false);
      p.w_down = add(blk(il, "ffn_down.weight"), {d, ff}, true);
      p.b_down = add(blk(il, "ffn_down.bias"), {d}, false);
    } else {
      p.wq = add(blk(il, "attn_q.weight"), {q, d}, true);
      p.wk = add(blk(il, "attn_k.weight"), {kv, d}, true);
      p.wv = add(blk(il, "attn_v.weight"), {kv, d}, true);
      p.wo = add(blk(il, "attn_output.weight"), {d, q}, true);
      p.ffn_norm = add(blk(il, "ffn_norm.weight"), {d}, false);
      p.w_gate = add(blk(il, "ffn_gate.weight"), {ff, d}, true);
      p.w_up = add(blk(il, "ffn_up.weight"), {ff, d}, true);
      p.w_down = add(blk(il, "ffn_down.weight"), {d, ff}, true);
    }
    L.layers.push_back(p);
  }
  L.output_norm = add("output_norm.weight", {d}, false);
  if (gpt2) L.output_norm_b = add("output_norm.bias", {d}, false);
  if (!cfg.tied_head) L.output = add("output.weight", {cfg.n_vocab, d}, true);
  return L;
}

std::vector<float> init_params(const ParamLayout& layout, uint64_t seed) {
  std::vector<float> p(layout.total, 0.0f);
  Rng rng(seed);
  const double std_base = 0.02;
  const double std_out = 0.02 / std::sqrt(2.0 * layout.cfg.n_layer);
  auto ends_with = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  for (const ParamTensor& t : layout.tensors) {
    float* dst = p.data() + t.offset;
    if (t.shape.size() == 1) {
      const float v = ends_with(t.name, ".bias") ? 0.0f : 1.0f;  // norm weights 1, biases 0
      for (int64_t i = 0; i < t.numel; ++i) dst[i] = v;
      continue;
    }
    const bool out_proj = ends_with(t.name, "attn_output.weight") || ends_with(t.name, "ffn_down.weight");
    const double sd = out_proj ? std_out : std_base;
    for (int64_t i = 0; i < t.numel; ++i) dst[i] = static_cast<float>(rng.normal() * sd);
  }
  return p;
}

}  // namespace llmopt::train
