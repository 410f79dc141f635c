// safetensors reader: a single file, or a sharded set listed in model.safetensors.index.json.
// Tensor names are the file's own (Hugging Face names); mapping them is the model layer's job.
// Supported dtypes: F32, F16, BF16 (others are reported as unsupported with the tensor's name).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "formats/weight_source.h"

namespace llmopt {

// `path` is a .safetensors file, a model.safetensors.index.json, or a directory holding one of them
// (the index is preferred). The returned source's metadata
// holds the file's "__metadata__" strings as "safetensors.<key>" string values.
Result<std::unique_ptr<WeightSource>> open_safetensors(const std::string& path);
// Parses one safetensors image in memory (fuzzing, tests); views point into `data`.
Result<std::unique_ptr<WeightSource>> parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace llmopt
