// The trained model as llmopt/llama.cpp GGUF: the parameters under llama.cpp's tensor names (f32),
// the config's "<arch>.*" keys (config_to_metadata) and the tokenizer keys of the model whose
// tokenizer the data was encoded with.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/metadata.h"
#include "formats/weight_source.h"
#include "train/params.h"

namespace llmopt::train {

// Copies every "tokenizer.*" key (tokenizer.ggml.*, tokenizer.chat_template, ...) from src to dst.
void copy_tokenizer_metadata(const Metadata& src, Metadata& dst);

// A canonical in-memory source whose tensor views point into `params` (which must outlive it).
// tokenizer_md may be null (no tokenizer keys are written then).
std::unique_ptr<MemoryWeightSource> params_to_source(const ParamLayout& layout,
                                                     const std::vector<float>& params,
                                                     const Metadata* tokenizer_md, const std::string& name);

// Writes the model as GGUF (every tensor f32) through model/convert's writer.
Status write_trained_gguf(const ParamLayout& layout, const std::vector<float>& params,
                          const Metadata* tokenizer_md, const std::string& name, const std::string& path);

}  // namespace llmopt::train
