// ModelConfig <-> GGUF-style metadata ("<arch>.*" keys, llama.cpp's names). This file owns the
// validation of hyperparameters read from files: every error names the offending key.
#include "model/config.h"

#include <limits>
#include <string>

namespace llmopt {

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::kGpt2:
      return "gpt2";
    case Arch::kLlama:
      return "llama";
  }
  return "unknown";
}

namespace {

// Reads an integer key that must be present and > 0.
Status read_positive(const Metadata& md, const std::string& key, int32_t* out) {
  const MetaValue* v = md.find(key);
  if (v == nullptr) return error("missing metadata key '" + key + "'");
  std::optional<int64_t> i = v->as_int();
  if (!i.has_value() || v->is_float()) {
    return error("metadata key '" + key + "' has type " + meta_type_name(v->type) + ", expected an integer");
  }
  if (*i <= 0 || *i > std::numeric_limits<int32_t>::max()) {
    return error(key + " = " + std::to_string(*i) + " (must be a positive 32-bit integer)");
  }
  *out = static_cast<int32_t>(*i);
  return ok_status();
}

// Same, but absent keys leave *out unchanged (its default).
Status read_optional_positive(const Metadata& md, const std::string& key, int32_t* out) {
  if (!md.contains(key)) return ok_status();
  return read_positive(md, key, out);
}

// Reads a float key; absent keys keep *out when `required` is false.
Status read_float(const Metadata& md, const std::string& key, bool required, float* out) {
  const MetaValue* v = md.find(key);
  if (v == nullptr) {
    if (required) return error("missing metadata key '" + key + "'");
    return ok_status();
  }
  std::optional<double> f = v->as_float();
  if (!f.has_value()) {
    return error("metadata key '" + key + "' has type " + meta_type_name(v->type) + ", expected a number");
  }
  if (!(*f > 0.0) || *f > std::numeric_limits<float>::max()) {
    return error(key + " = " + std::to_string(*f) + " (must be a positive number)");
  }
  *out = static_cast<float>(*f);
  return ok_status();
}

}  // namespace

Result<ModelConfig> config_from_metadata(const Metadata& md) {
  std::optional<std::string> arch = md.get_string("general.architecture");
  if (!arch.has_value()) return error("missing metadata key 'general.architecture'");
  ModelConfig cfg;
  if (*arch == "gpt2") {
    cfg.arch = Arch::kGpt2;
  } else if (*arch == "llama") {
    cfg.arch = Arch::kLlama;
  } else {
    return error("unknown architecture '" + *arch + "'");
  }
  const std::string p = *arch + ".";
  cfg.name = md.get_string("general.name").value_or("");

  LLMOPT_RETURN_IF_ERROR(read_positive(md, p + "context_length", &cfg.n_ctx_train));
  LLMOPT_RETURN_IF_ERROR(read_positive(md, p + "embedding_length", &cfg.n_embd));
  LLMOPT_RETURN_IF_ERROR(read_positive(md, p + "feed_forward_length", &cfg.n_ff));
  LLMOPT_RETURN_IF_ERROR(read_positive(md, p + "block_count", &cfg.n_layer));
  LLMOPT_RETURN_IF_ERROR(read_positive(md, p + "attention.head_count", &cfg.n_head));
  cfg.n_head_kv = cfg.n_head;
  LLMOPT_RETURN_IF_ERROR(read_optional_positive(md, p + "attention.head_count_kv", &cfg.n_head_kv));
  cfg.n_vocab = 0;
  LLMOPT_RETURN_IF_ERROR(read_optional_positive(md, p + "vocab_size", &cfg.n_vocab));

  if (cfg.n_embd % cfg.n_head != 0) {
    return error(p + "attention.head_count = " + std::to_string(cfg.n_head) + " does not divide " + p +
                 "embedding_length = " + std::to_string(cfg.n_embd));
  }
  if (cfg.n_head % cfg.n_head_kv != 0) {
    return error(p + "attention.head_count_kv = " + std::to_string(cfg.n_head_kv) + " does not divide " + p +
                 "attention.head_count = " + std::to_string(cfg.n_head));
  }
  if (cfg.n_head / cfg.n_head_kv > 64) {  // kernels::kAttnMaxRows query rows per attention call
    return error(p + "attention.head_count / head_count_kv = " + std::to_string(cfg.n_head / cfg.n_head_kv) +
                 " query heads per KV head; at most 64 are supported");
  }
  cfg.head_dim = cfg.n_embd / cfg.n_head;

  if (cfg.arch == Arch::kGpt2) {
    LLMOPT_RETURN_IF_ERROR(read_float(md, p + "attention.layer_norm_epsilon", true, &cfg.norm_eps));
    cfg.n_rot = 0;  // learned absolute positions, no rotary embedding
  } else {
    LLMOPT_RETURN_IF_ERROR(read_float(md, p + "attention.layer_norm_rms_epsilon", true, &cfg.norm_eps));
    cfg.rope_theta = 10000.0f;
    LLMOPT_RETURN_IF_ERROR(read_float(md, p + "rope.freq_base", false, &cfg.rope_theta));
    cfg.n_rot = cfg.head_dim;
    LLMOPT_RETURN_IF_ERROR(read_optional_positive(md, p + "rope.dimension_count", &cfg.n_rot));
    if (cfg.n_rot % 2 != 0 || cfg.n_rot > cfg.head_dim) {
      return error(p + "rope.dimension_count = " + std::to_string(cfg.n_rot) +
                   " (must be even and at most the head size " + std::to_string(cfg.head_dim) + ")");
    }
    // NOTE: GGUF llama stores Q/K rows so that rotary pairs are adjacent (2i, 2i+1).
    cfg.rope_layout = kernels::RopeLayout::kAdjacent;
  }
  return cfg;
}

void config_to_metadata(const ModelConfig& cfg, Metadata& md) {
  const std::string arch = arch_name(cfg.arch);
  const std::string p = arch + ".";
  md.set("general.architecture", MetaValue::from_string(arch));
  if (!cfg.name.empty()) md.set("general.name", MetaValue::from_string(cfg.name));
  md.set(p + "context_length", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_ctx_train)));
  md.set(p + "embedding_length", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_embd)));
  md.set(p + "feed_forward_length", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_ff)));
  md.set(p + "block_count", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_layer)));
  md.set(p + "attention.head_count", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_head)));
  md.set(p + "attention.head_count_kv", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_head_kv)));
  if (cfg.arch == Arch::kGpt2) {
    md.set(p + "attention.layer_norm_epsilon", MetaValue::from_f32(cfg.norm_eps));
  } else {
    md.set(p + "attention.layer_norm_rms_epsilon", MetaValue::from_f32(cfg.norm_eps));
    md.set(p + "rope.freq_base", MetaValue::from_f32(cfg.rope_theta));
    md.set(p + "rope.dimension_count", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_rot)));
  }
  if (cfg.n_vocab > 0) md.set(p + "vocab_size", MetaValue::from_u32(static_cast<uint32_t>(cfg.n_vocab)));
}

}  // namespace llmopt
