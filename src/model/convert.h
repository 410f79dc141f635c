// Writing a canonical WeightSource as GGUF the way llama.cpp's converters do: 2-D weight matrices in
// the requested type, 1-D tensors (norms, biases) in F32, general.file_type set, metadata copied.
#pragma once

#include <functional>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/weight_source.h"

namespace llmopt {

struct ConvertOptions {
  DType outtype = DType::kF16;   // f32 | f16 | bf16 in this version
  // Called after each tensor: (index, count, name).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// Converts and writes `src` to `path`. Tensors already in a quantized type are copied as they are.
Status write_gguf_model(const WeightSource& src, const std::string& path, const ConvertOptions& opts);

}  // namespace llmopt
