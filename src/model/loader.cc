// Format detection and the canonical source: GGUF (as is, or with F16/BF16 vectors widened), Hugging
// Face directories (hf_import) and llama2.c checkpoints, each with its tokenizer in tokenizer.ggml.*
// keys; and load_model, which turns a canonical source into a runnable Model.
#include "model/loader.h"

#include <sys/stat.h>

#include <cstring>
#include <limits>

#include "core/log.h"
#include "core/mmap_file.h"
#include "formats/gguf.h"
#include "kernels/repack.h"
#include "formats/llama2c.h"
#include "model/config.h"
#include "model/hf_import.h"
#include "model/tensor_transform.h"
#include "model/weights.h"

namespace llmopt {
namespace {

enum class PathKind { kMissing, kFile, kDirectory, kOther };

PathKind path_kind(const std::string& p) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return PathKind::kMissing;
  if (S_ISDIR(st.st_mode)) return PathKind::kDirectory;
  if (S_ISREG(st.st_mode)) return PathKind::kFile;
  return PathKind::kOther;
}

bool is_file(const std::string& p) { return path_kind(p) == PathKind::kFile; }

std::string dir_of(const std::string& p) {
  const size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string loader_base_name(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string loader_stem(const std::string& p) {
  std::string b = loader_base_name(p);
  const size_t dot = b.rfind('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

bool loader_ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Prefixes the path unless the message already starts with it.
Status in_file(const Status& s, const std::string& path) {
  if (s.ok() || s.message().rfind(path, 0) == 0) return s;
  return s.with_context(path);
}

Result<bool> has_gguf_magic(const std::string& path) {
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> f, MappedFile::open(path));
  return f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0;
}

// A MemoryWeightSource presenting `src` with its metadata and tensors; 1-D F16/BF16 tensors (norms,
// biases) become F32 copies, everything else stays a view into `src`.
Result<std::unique_ptr<MemoryWeightSource>> wrap_source(std::shared_ptr<const WeightSource> src) {
  auto out = std::make_unique<MemoryWeightSource>(src->origin());
  for (const auto& [key, value] : src->metadata().entries()) out->mutable_metadata().set(key, value);
  for (const NamedTensor& t : src->tensors()) {
    if (t.view.shape.size() == 1 && (t.view.type == DType::kF16 || t.view.type == DType::kBF16)) {
      LLMOPT_RETURN_IF_ERROR(in_file(add_f32_copy(*out, t.name, t.view), src->origin()));
    } else {
      out->add_tensor(t.name, t.view);
    }
  }
  out->keep_alive(std::move(src));
  return out;
}

bool needs_f32_vectors(const WeightSource& src) {
  for (const NamedTensor& t : src.tensors()) {
    if (t.view.shape.size() == 1 && (t.view.type == DType::kF16 || t.view.type == DType::kBF16)) return true;
  }
  return false;
}

// The tokenizer files a Hugging Face directory may hold, in order of preference; empty if none.
Result<std::optional<TokenizerSpec>> find_hf_tokenizer(const std::string& dir) {
  if (is_file(dir + "/tokenizer.json")) {
    LLMOPT_ASSIGN_OR_RETURN(TokenizerSpec spec, tokenizer_spec_from_hf_json(dir + "/tokenizer.json"));
    return std::optional<TokenizerSpec>(std::move(spec));
  }
  if (is_file(dir + "/vocab.json") && is_file(dir + "/merges.txt")) {
    LLMOPT_ASSIGN_OR_RETURN(TokenizerSpec spec,
                            tokenizer_spec_from_vocab_merges(dir + "/vocab.json", dir + "/merges.txt"));
    return std::optional<TokenizerSpec>(std::move(spec));
  }
  return std::optional<TokenizerSpec>();
}

Result<std::shared_ptr<const WeightSource>> open_hf(const std::string& dir, const LoadOptions& opts) {
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<MemoryWeightSource> src, import_hf_model(dir));
  std::optional<TokenizerSpec> spec;
  if (!opts.tokenizer_path.empty()) {
    LLMOPT_ASSIGN_OR_RETURN(TokenizerSpec s, tokenizer_spec_from_file(opts.tokenizer_path));
    spec = std::move(s);
  } else {
    LLMOPT_ASSIGN_OR_RETURN(spec, find_hf_tokenizer(dir));
    if (!spec && opts.require_tokenizer) {
      return error(dir +
                   ": no tokenizer found: expected tokenizer.json or vocab.json + merges.txt "
                   "(or pass --tokenizer PATH)");
    }
  }
  if (spec) tokenizer_spec_to_metadata(*spec, src->mutable_metadata());
  return std::shared_ptr<const WeightSource>(std::move(src));
}

// LoadOptions::repack: Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 matrices of whole 16-row groups, in place (the bytes are this
// process's own copy of the file). Only weight matrices ("*.weight"): the tensors that go with them (an
// input rotation "<name>.rot", f32 [m][m], read as plain rows by kernels/rotate.h) keep the file layout.
void repack_weights(GgufFile& file) {
  std::vector<NamedTensor>* tensors = file.tensors_in_private_memory();
  if (tensors == nullptr) return;
  int n = 0;
  for (NamedTensor& t : *tensors) {
    if (!t.name.ends_with(".weight")) continue;
    if (!kernels::can_repack_r16(t.view) || !kernels::prefers_r16(t.view.type)) continue;
    const DType rt = kernels::preferred_r16_type(t.view.type);
    kernels::repack_r16_as(rt, const_cast<uint8_t*>(t.view.data), t.view.rows(), t.view.cols());
    t.view.type = rt;
    ++n;
  }
  if (n > 0) log_debug("load: " + std::to_string(n) + " matrices regrouped by 16 rows");
}

Result<std::shared_ptr<const WeightSource>> open_gguf(const std::string& path, const LoadOptions& opts) {
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::open(path, opts.gguf_load));
  if (opts.repack) repack_weights(*file);
  std::shared_ptr<const WeightSource> gguf(std::move(file));
  if (opts.tokenizer_path.empty() && !needs_f32_vectors(*gguf)) return gguf;
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<MemoryWeightSource> wrapped, wrap_source(gguf));
  if (!opts.tokenizer_path.empty()) {
    LLMOPT_ASSIGN_OR_RETURN(TokenizerSpec spec, tokenizer_spec_from_file(opts.tokenizer_path));
    tokenizer_spec_to_metadata(spec, wrapped->mutable_metadata());
  }
  return std::shared_ptr<const WeightSource>(std::move(wrapped));
}

Result<std::shared_ptr<const WeightSource>> open_l2c(const std::string& path, const LoadOptions& opts) {
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<WeightSource> ckpt, open_llama2c(path));
  LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<MemoryWeightSource> src, wrap_source(std::move(ckpt)));
  if (!src->metadata().contains("general.name")) {
    src->mutable_metadata().set("general.name", MetaValue::from_string(loader_stem(path)));
  }
  std::string tok_path = opts.tokenizer_path;
  if (tok_path.empty() && is_file(dir_of(path) + "/tokenizer.bin"))
    tok_path = dir_of(path) + "/tokenizer.bin";
  if (tok_path.empty()) {
    if (opts.require_tokenizer) {
      return error(path + ": no tokenizer found: pass --tokenizer PATH (llama2.c tokenizer.bin)");
    }
  } else {
    LLMOPT_ASSIGN_OR_RETURN(TokenizerSpec spec, tokenizer_spec_from_file(tok_path));
    tokenizer_spec_to_metadata(spec, src->mutable_metadata());
  }
  return std::shared_ptr<const WeightSource>(std::move(src));
}

}  // namespace

Result<TokenizerSpec> tokenizer_spec_from_file(const std::string& path) {
  switch (path_kind(path)) {
    case PathKind::kMissing:
      return error(path + ": tokenizer not found");
    case PathKind::kOther:
      return error(path + ": not a regular file or directory");
    case PathKind::kDirectory: {
      LLMOPT_ASSIGN_OR_RETURN(std::optional<TokenizerSpec> spec, find_hf_tokenizer(path));
      if (spec) return std::move(*spec);
      if (is_file(path + "/tokenizer.bin")) return tokenizer_spec_from_llama2c(path + "/tokenizer.bin");
      return error(path + ": no tokenizer found (tokenizer.json, vocab.json + merges.txt or tokenizer.bin)");
    }
    case PathKind::kFile:
      break;
  }
  LLMOPT_ASSIGN_OR_RETURN(bool gguf, has_gguf_magic(path));
  if (gguf) {
    LLMOPT_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::open(path));
    Result<TokenizerSpec> spec = tokenizer_spec_from_metadata(file->metadata());
    if (!spec.ok()) return in_file(spec.status(), path);
    return spec;
  }
  if (loader_ends_with(path, "vocab.json")) {
    const std::string merges = dir_of(path) + "/merges.txt";
    if (!is_file(merges)) return error(path + ": a vocab.json tokenizer needs merges.txt next to it");
    return tokenizer_spec_from_vocab_merges(path, merges);
  }
  if (loader_ends_with(path, ".json")) return tokenizer_spec_from_hf_json(path);
  return tokenizer_spec_from_llama2c(path);
}

Result<std::shared_ptr<const WeightSource>> open_model_source(const std::string& path,
                                                              const LoadOptions& opts) {
  Result<std::shared_ptr<const WeightSource>> src = error("");
  switch (path_kind(path)) {
    case PathKind::kMissing:
      return error(path + ": no such file or directory");
    case PathKind::kOther:
      return error(path + ": not a regular file or directory");
    case PathKind::kDirectory:
      if (!is_file(path + "/config.json")) {
        return error(path + ": not a Hugging Face model directory (config.json not found)");
      }
      src = open_hf(path, opts);
      break;
    case PathKind::kFile: {
      LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> f, MappedFile::open(path));
      if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) {
        src = open_gguf(path, opts);
      } else if (looks_like_llama2c(f->data(), f->size())) {
        src = open_l2c(path, opts);
      } else {
        return error(path +
                     ": unrecognized model format (not GGUF, not a Hugging Face directory, not a llama2.c "
                     "checkpoint)");
      }
      break;
    }
  }
  if (!src.ok()) return in_file(src.status(), path);
  if (opts.require_tokenizer && !metadata_has_tokenizer((*src)->metadata())) {
    return error(path + ": model has no tokenizer");
  }
  return src;
}

Result<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& opts) {
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<const WeightSource> src, open_model_source(path, opts));
  return load_model_from_source(std::move(src), opts);
}

Result<std::unique_ptr<Model>> load_model_from_source(std::shared_ptr<const WeightSource> src,
                                                      const LoadOptions& opts) {
  const std::string path = src->origin();
  const Metadata& md = src->metadata();
  Result<ModelConfig> cfg_or = config_from_metadata(md);
  if (!cfg_or.ok()) return in_file(cfg_or.status(), path);
  ModelConfig cfg = std::move(cfg_or).value();
  if (cfg.n_vocab == 0) {
    const TensorView* embd = src->find("token_embd.weight");
    if (embd == nullptr) return error(path + ": missing tensor 'token_embd.weight'");
    if (embd->shape.size() != 2 || embd->shape[0] <= 0 ||
        embd->shape[0] > std::numeric_limits<int32_t>::max()) {
      return error(path + ": tensor 'token_embd.weight' has shape " + shape_to_string(embd->shape) +
                   "; expected [n_vocab, n_embd]");
    }
    cfg.n_vocab = static_cast<int32_t>(embd->shape[0]);
  }
  Result<Weights> weights = bind_weights(*src, cfg);
  if (!weights.ok()) return in_file(weights.status(), path);

  std::unique_ptr<Tokenizer> tokenizer;
  if (metadata_has_tokenizer(md)) {
    Result<TokenizerSpec> spec = tokenizer_spec_from_metadata(md);
    if (!spec.ok()) return in_file(spec.status(), path);
    Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::create(*spec);
    if (!tok.ok()) return in_file(tok.status(), path);
    tokenizer = std::move(tok).value();
    if (tokenizer->n_vocab() > cfg.n_vocab) {
      return error(path + ": tokenizer has " + std::to_string(tokenizer->n_vocab()) +
                   " tokens but the model only " + std::to_string(cfg.n_vocab));
    }
  } else if (opts.require_tokenizer) {
    return error(path + ": model has no tokenizer");
  }
  return std::make_unique<Model>(std::move(cfg), std::move(weights).value(), std::move(tokenizer),
                                 std::move(src));
}

}  // namespace llmopt
