// GGUF export of trained parameters (see export.h).
#include "train/export.h"

#include "core/check.h"
#include "model/config.h"
#include "model/convert.h"

namespace llmopt::train {

void copy_tokenizer_metadata(const Metadata& src, Metadata& dst) {
  for (const auto& [key, value] : src.entries()) {
    if (key.rfind("tokenizer.", 0) == 0) dst.set(key, value);
  }
}

std::unique_ptr<MemoryWeightSource> params_to_source(const ParamLayout& layout,
                                                     const std::vector<float>& params,
                                                     const Metadata* tokenizer_md, const std::string& name) {
  LLMOPT_CHECK(params.size() == layout.total);
  auto src = std::make_unique<MemoryWeightSource>("trained:" + name);
  for (const ParamTensor& t : layout.tensors) {
    TensorView v;
    v.type = DType::kF32;
    v.shape = t.shape;
    v.data = reinterpret_cast<const uint8_t*>(params.data() + t.offset);
    v.nbytes = static_cast<size_t>(t.numel) * sizeof(float);
    src->add_tensor(t.name, std::move(v));
  }
  ModelConfig cfg = layout.cfg;
  cfg.name = name;
  Metadata& md = src->mutable_metadata();
  config_to_metadata(cfg, md);
  if (tokenizer_md != nullptr) copy_tokenizer_metadata(*tokenizer_md, md);
  return src;
}

Status write_trained_gguf(const ParamLayout& layout, const std::vector<float>& params,
                          const Metadata* tokenizer_md, const std::string& name, const std::string& path) {
  std::unique_ptr<MemoryWeightSource> src = params_to_source(layout, params, tokenizer_md, name);
  ConvertOptions opts;
  opts.outtype = DType::kF32;
  return write_gguf_model(*src, path, opts);
}

}  // namespace llmopt::train
