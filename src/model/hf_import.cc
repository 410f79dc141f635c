// Hugging Face -> canonical import for GPT2LMHeadModel and LlamaForCausalLM: config.json keys become
// ModelConfig / GGUF keys, safetensors names become llama.cpp names, and layouts are rewritten the way
// llama.cpp's convert_hf_to_gguf does (Conv1D transposed, Q/K rows permuted, tied heads dropped).
#include "model/hf_import.h"

#include <sys/stat.h>

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/mmap_file.h"
#include "formats/safetensors.h"
#include "model/config.h"
#include "model/tensor_transform.h"

namespace llmopt {
namespace {

using json = nlohmann::json;

bool file_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string base_name(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// Typed access to config.json values; every error names the file and the key.
class ConfigJson {
 public:
  ConfigJson(const json& j, std::string file) : j_(j), file_(std::move(file)) {}
  const std::string& file() const { return file_; }
  bool has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  // A positive integer that fits int32. `def` is used when the key is absent or null.
  Status get_count(const char* key, std::optional<int64_t> def, int32_t* out) const {
    if (!has(key)) {
      if (!def) return error(file_ + ": missing required key '" + key + "'");
      *out = static_cast<int32_t>(*def);
      return ok_status();
    }
    const json& v = j_[key];
    if (!v.is_number_integer()) return error(file_ + ": key '" + key + "' must be an integer");
    const int64_t x = v.is_number_unsigned()
                          ? static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX))
                          : v.get<int64_t>();
    if (x <= 0 || x > std::numeric_limits<int32_t>::max()) {
      return error(file_ + ": key '" + key + "' = " + std::to_string(x) + " is out of range");
    }
    *out = static_cast<int32_t>(x);
    return ok_status();
  }
  Status get_float(const char* key, double def, float* out) const {
    if (!has(key)) {
      *out = static_cast<float>(def);
      return ok_status();
    }
    const json& v = j_[key];
    if (!v.is_number()) return error(file_ + ": key '" + key + "' must be a number");
    const double x = v.get<double>();
    if (!(x > 0.0) || x > 1e30)
      return error(file_ + ": key '" + key + "' = " + v.dump() + " is out of range");
    *out = static_cast<float>(x);
    return ok_status();
  }
  Status get_bool(const char* key, bool def, bool* out) const {
    if (!has(key)) {
      *out = def;
      return ok_status();
    }
    if (!j_[key].is_boolean()) return error(file_ + ": key '" + key + "' must be true or false");
    *out = j_[key].get<bool>();
    return ok_status();
  }
  std::optional<std::string> get_string(const char* key) const {
    if (!has(key) || !j_[key].is_string()) return std::nullopt;
    return j_[key].get<std::string>();
  }
  // Rejects a key whose value would change the math in a way this engine does not implement.
  Status reject_if(const char* key, bool bad, const std::string& why) const {
    if (bad) return error(file_ + ": '" + key + "' = " + j_[key].dump() + " is not supported (" + why + ")");
    return ok_status();
  }

 private:
  const json& j_;
  std::string file_;
};

// Reads tensors from the safetensors source and adds them under canonical names.
class Importer {
 public:
  Importer(std::shared_ptr<const WeightSource> src, MemoryWeightSource& dst)
      : src_(std::move(src)), dst_(dst) {
    dst_.keep_alive(src_);
  }

  const TensorView* find(const std::string& name) const { return src_->find(name); }

  Result<const TensorView*> require(const std::string& name) const {
    const TensorView* t = src_->find(name);
    if (t == nullptr) return error(src_->origin() + ": missing tensor '" + name + "'");
    if (!is_plain_float(t->type)) {
      return error(src_->origin() + ": tensor '" + name + "' has type " + dtype_name(t->type) +
                   "; expected f32, f16 or bf16");
    }
    return t;
  }

  // 1-D tensors become F32; matrices are kept in their type (a view, no copy).
  Status add(const std::string& to, const TensorView& t) {
    if (t.shape.size() <= 1 && t.type != DType::kF32) return ctx(add_f32_copy(dst_, to, t));
    dst_.add_tensor(to, t);
    return ok_status();
  }
  Status copy(const std::string& to, const std::string& from) {
    LLMOPT_ASSIGN_OR_RETURN(const TensorView* t, require(from));
    return add(to, *t);
  }
  Status transpose(const std::string& to, const std::string& from) {
    LLMOPT_ASSIGN_OR_RETURN(const TensorView* t, require(from));
    return ctx(add_transposed(dst_, to, *t));
  }
  Status permute(const std::string& to, const std::string& from, int64_t n_head) {
    LLMOPT_ASSIGN_OR_RETURN(const TensorView* t, require(from));
    return ctx(add_rope_permuted(dst_, to, *t, n_head));
  }
  const std::string& origin() const { return src_->origin(); }

 private:
  Status ctx(Status s) const { return s.ok() ? s : s.with_context(src_->origin()); }
  std::shared_ptr<const WeightSource> src_;
  MemoryWeightSource& dst_;
};

bool same_tensor(const TensorView& a, const TensorView& b) {
  if (a.data == b.data) return true;
  return a.type == b.type && a.shape == b.shape && a.nbytes == b.nbytes &&
         std::memcmp(a.data, b.data, a.nbytes) == 0;
}

std::string blk(int il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

Status import_gpt2(const ConfigJson& cj, Importer& im, ModelConfig& cfg) {
  cfg.arch = Arch::kGpt2;
  LLMOPT_RETURN_IF_ERROR(cj.get_count("n_embd", std::nullopt, &cfg.n_embd));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("n_layer", std::nullopt, &cfg.n_layer));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("n_head", std::nullopt, &cfg.n_head));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("vocab_size", 50257, &cfg.n_vocab));
  if (cj.has("n_positions")) {
    LLMOPT_RETURN_IF_ERROR(cj.get_count("n_positions", std::nullopt, &cfg.n_ctx_train));
  } else {
    LLMOPT_RETURN_IF_ERROR(cj.get_count("n_ctx", 1024, &cfg.n_ctx_train));
  }
  LLMOPT_RETURN_IF_ERROR(cj.get_count("n_inner", static_cast<int64_t>(cfg.n_embd) * 4, &cfg.n_ff));
  LLMOPT_RETURN_IF_ERROR(cj.get_float("layer_norm_epsilon", 1e-5, &cfg.norm_eps));
  const std::string act = cj.get_string("activation_function").value_or("gelu_new");
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("activation_function", act != "gelu_new" && act != "gelu_pytorch_tanh",
                                      "only the tanh GELU (gelu_new) is implemented"));
  bool flag = false;
  LLMOPT_RETURN_IF_ERROR(cj.get_bool("scale_attn_by_inverse_layer_idx", false, &flag));
  LLMOPT_RETURN_IF_ERROR(
      cj.reject_if("scale_attn_by_inverse_layer_idx", flag, "standard GPT-2 attention only"));
  LLMOPT_RETURN_IF_ERROR(cj.get_bool("scale_attn_weights", true, &flag));
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("scale_attn_weights", !flag, "standard GPT-2 attention only"));
  if (cfg.n_embd % cfg.n_head != 0) {
    return error(cj.file() + ": n_embd " + std::to_string(cfg.n_embd) + " is not divisible by n_head " +
                 std::to_string(cfg.n_head));
  }
  cfg.n_head_kv = cfg.n_head;
  cfg.head_dim = cfg.n_embd / cfg.n_head;
  cfg.n_rot = 0;

  // GPT2LMHeadModel saves "transformer.*"; GPT2Model (and the original gpt2 upload) has no prefix.
  const std::string p = im.find("transformer.wte.weight") != nullptr ? "transformer." : "";
  LLMOPT_RETURN_IF_ERROR(im.copy("token_embd.weight", p + "wte.weight"));
  LLMOPT_RETURN_IF_ERROR(im.copy("position_embd.weight", p + "wpe.weight"));
  for (int il = 0; il < cfg.n_layer; ++il) {
    const std::string h = p + "h." + std::to_string(il) + ".";
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_norm.weight"), h + "ln_1.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_norm.bias"), h + "ln_1.bias"));
    // Conv1D stores [in, out]; GGUF wants [out, in] rows.
    LLMOPT_RETURN_IF_ERROR(im.transpose(blk(il, "attn_qkv.weight"), h + "attn.c_attn.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_qkv.bias"), h + "attn.c_attn.bias"));
    LLMOPT_RETURN_IF_ERROR(im.transpose(blk(il, "attn_output.weight"), h + "attn.c_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_output.bias"), h + "attn.c_proj.bias"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_norm.weight"), h + "ln_2.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_norm.bias"), h + "ln_2.bias"));
    LLMOPT_RETURN_IF_ERROR(im.transpose(blk(il, "ffn_up.weight"), h + "mlp.c_fc.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_up.bias"), h + "mlp.c_fc.bias"));
    LLMOPT_RETURN_IF_ERROR(im.transpose(blk(il, "ffn_down.weight"), h + "mlp.c_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_down.bias"), h + "mlp.c_proj.bias"));
  }
  LLMOPT_RETURN_IF_ERROR(im.copy("output_norm.weight", p + "ln_f.weight"));
  LLMOPT_RETURN_IF_ERROR(im.copy("output_norm.bias", p + "ln_f.bias"));
  cfg.tied_head = true;
  if (const TensorView* head = im.find("lm_head.weight")) {
    const TensorView* wte = im.find(p + "wte.weight");
    if (!same_tensor(*head, *wte)) {
      LLMOPT_RETURN_IF_ERROR(im.copy("output.weight", "lm_head.weight"));
      cfg.tied_head = false;
    }
  }
  return ok_status();
}

Status import_llama(const ConfigJson& cj, const WeightSource& st, Importer& im, ModelConfig& cfg) {
  cfg.arch = Arch::kLlama;
  LLMOPT_RETURN_IF_ERROR(cj.get_count("hidden_size", std::nullopt, &cfg.n_embd));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("intermediate_size", std::nullopt, &cfg.n_ff));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("num_hidden_layers", std::nullopt, &cfg.n_layer));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("num_attention_heads", std::nullopt, &cfg.n_head));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("num_key_value_heads", cfg.n_head, &cfg.n_head_kv));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("vocab_size", 32000, &cfg.n_vocab));
  LLMOPT_RETURN_IF_ERROR(cj.get_count("max_position_embeddings", 2048, &cfg.n_ctx_train));
  LLMOPT_RETURN_IF_ERROR(cj.get_float("rms_norm_eps", 1e-6, &cfg.norm_eps));
  LLMOPT_RETURN_IF_ERROR(cj.get_float("rope_theta", 10000.0, &cfg.rope_theta));
  bool tie = false, flag = false;
  LLMOPT_RETURN_IF_ERROR(cj.get_bool("tie_word_embeddings", false, &tie));
  LLMOPT_RETURN_IF_ERROR(cj.get_bool("attention_bias", false, &flag));
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("attention_bias", flag, "LLaMA projections without biases only"));
  LLMOPT_RETURN_IF_ERROR(cj.get_bool("mlp_bias", false, &flag));
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("mlp_bias", flag, "LLaMA projections without biases only"));
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("rope_scaling", cj.has("rope_scaling"), "plain RoPE only"));
  const std::string act = cj.get_string("hidden_act").value_or("silu");
  LLMOPT_RETURN_IF_ERROR(cj.reject_if("hidden_act", act != "silu", "SwiGLU with SiLU only"));
  if (cfg.n_embd % cfg.n_head != 0 || cfg.n_head % cfg.n_head_kv != 0 || (cfg.n_embd / cfg.n_head) % 2 != 0) {
    return error(cj.file() + ": inconsistent attention shape: hidden_size " + std::to_string(cfg.n_embd) +
                 ", num_attention_heads " + std::to_string(cfg.n_head) + ", num_key_value_heads " +
                 std::to_string(cfg.n_head_kv));
  }
  cfg.head_dim = cfg.n_embd / cfg.n_head;
  if (cj.has("head_dim")) {
    int32_t hd = 0;
    LLMOPT_RETURN_IF_ERROR(cj.get_count("head_dim", std::nullopt, &hd));
    LLMOPT_RETURN_IF_ERROR(
        cj.reject_if("head_dim", hd != cfg.head_dim, "head_dim must be hidden_size / heads"));
  }
  cfg.n_rot = cfg.head_dim;
  // The Q/K permutation below turns HF's rotate-half layout into GGUF's adjacent pairs.
  cfg.rope_layout = kernels::RopeLayout::kAdjacent;

  // Tied models may store only one of the two matrices; safetensors' __metadata__ can alias the
  // missing name to the stored one (e.g. "model.embed_tokens.weight": "lm_head.weight").
  std::string embd_name = "model.embed_tokens.weight";
  if (im.find(embd_name) == nullptr) {
    auto alias = st.metadata().get_string("safetensors." + embd_name);
    if (alias && im.find(*alias) != nullptr) {
      embd_name = *alias;
    } else if (tie && im.find("lm_head.weight") != nullptr) {
      embd_name = "lm_head.weight";
    }
  }
  LLMOPT_RETURN_IF_ERROR(im.copy("token_embd.weight", embd_name));
  for (int il = 0; il < cfg.n_layer; ++il) {
    const std::string h = "model.layers." + std::to_string(il) + ".";
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_norm.weight"), h + "input_layernorm.weight"));
    LLMOPT_RETURN_IF_ERROR(im.permute(blk(il, "attn_q.weight"), h + "self_attn.q_proj.weight", cfg.n_head));
    LLMOPT_RETURN_IF_ERROR(
        im.permute(blk(il, "attn_k.weight"), h + "self_attn.k_proj.weight", cfg.n_head_kv));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_v.weight"), h + "self_attn.v_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "attn_output.weight"), h + "self_attn.o_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_norm.weight"), h + "post_attention_layernorm.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_gate.weight"), h + "mlp.gate_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_up.weight"), h + "mlp.up_proj.weight"));
    LLMOPT_RETURN_IF_ERROR(im.copy(blk(il, "ffn_down.weight"), h + "mlp.down_proj.weight"));
  }
  LLMOPT_RETURN_IF_ERROR(im.copy("output_norm.weight", "model.norm.weight"));
  // tie_word_embeddings: HF ignores any stored lm_head and reuses the embedding.
  cfg.tied_head = true;
  if (!tie) {
    const TensorView* head = im.find("lm_head.weight");
    if (head == nullptr) return error(im.origin() + ": missing tensor 'lm_head.weight'");
    if (!same_tensor(*head, *im.find(embd_name))) {
      LLMOPT_RETURN_IF_ERROR(im.copy("output.weight", "lm_head.weight"));
      cfg.tied_head = false;
    }
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<MemoryWeightSource>> import_hf_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  LLMOPT_ASSIGN_OR_RETURN(std::string text, read_text_file(config_path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error(config_path + ": not a valid JSON object");
  ConfigJson cj(j, config_path);

  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch = j["architectures"][0].get<std::string>();
  } else {
    return error(config_path + ": missing 'architectures' (expected one of: " + kHfSupportedArchitectures +
                 ")");
  }
  if (arch != "GPT2LMHeadModel" && arch != "LlamaForCausalLM") {
    return error(config_path + ": unsupported architecture '" + arch +
                 "' in config.json (supported: " + kHfSupportedArchitectures + ")");
  }

  std::string weights_path = dir + "/model.safetensors";
  if (!file_exists(weights_path)) {
    weights_path = dir + "/model.safetensors.index.json";
    if (!file_exists(weights_path)) {
      return error(dir +
                   ": no model.safetensors or model.safetensors.index.json (only safetensors checkpoints "
                   "are supported)");
    }
  }
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<WeightSource> st_unique, open_safetensors(weights_path));
  std::shared_ptr<const WeightSource> st(std::move(st_unique));

  auto out = std::make_unique<MemoryWeightSource>(dir);
  Importer im(st, *out);
  ModelConfig cfg;
  if (arch == "GPT2LMHeadModel") {
    LLMOPT_RETURN_IF_ERROR(import_gpt2(cj, im, cfg));
  } else {
    LLMOPT_RETURN_IF_ERROR(import_llama(cj, *st, im, cfg));
  }
  // The embedding matrix is the truth for the vocabulary size (config.json may round it).
  const TensorView* embd = out->find("token_embd.weight");
  if (embd != nullptr && embd->shape.size() == 2 && embd->shape[0] > 0 &&
      embd->shape[0] <= std::numeric_limits<int32_t>::max()) {
    cfg.n_vocab = static_cast<int32_t>(embd->shape[0]);
  }
  std::string name = cj.get_string("_name_or_path").value_or("");
  cfg.name = name.empty() ? base_name(dir) : base_name(name);

  Metadata& md = out->mutable_metadata();
  md.set("general.architecture", MetaValue::from_string(arch_name(cfg.arch)));
  md.set("general.name", MetaValue::from_string(cfg.name));
  config_to_metadata(cfg, md);
  return out;
}

}  // namespace llmopt
