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
  // f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_K | q5_K | q6_K. Quantized types use
  // llama.cpp's reference quantizers (bit-exact); matrices whose rows do not fit the block size fall
  // back like llama-quantize (see convert.cc) with a warning through the log sink.
  DType outtype = DType::kF16;
  // Called after each tensor: (index, count, name).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// Converts and writes `src` to `path`. Tensors already in a quantized type are copied as they are.
Status write_gguf_model(const WeightSource& src, const std::string& path, const ConvertOptions& opts);

}  // namespace llmopt
